"""The connection budget the chart enforces at render, before anything is applied.

The budget: (most pods + surge) x WEB_CONCURRENCY x (pool + overflow + 1 readiness) + 2 for
the migration Job must fit the database's max_connections minus its reserved connections.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.chart.conftest import Render
from tests.chart.kube import RenderError, helm_template
from tests.chart.value_sets import BUNDLED_POSTGRESQL, EXTERNAL_CHART_SECRET, IDENTITY, merge

BUNDLED = merge(IDENTITY, BUNDLED_POSTGRESQL)
EXTERNAL = merge(IDENTITY, EXTERNAL_CHART_SECRET)
# 3 pods + 1 surge (25% rounded up), 2 workers, 10 + 0 + 1 each, + 2: 90 connections.
NINETY = {"replicaCount": 3}


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (
            merge(BUNDLED, {"autoscaling": {"enabled": True}}),
            "connection budget exceeded: (10 pods + 3 surge) x 2 workers x (poolSize 10 +"
            " maxOverflow 0 + 1 readiness) + 2 migration = 288 connections, but"
            " postgresql.maxConnections 100 - superuserReservedConnections 3 leaves 97.",
        ),
        (
            merge(
                EXTERNAL,
                {
                    "replicaCount": 3,
                    "rollingUpdate": {"maxSurge": "34%"},
                    "config": {"webConcurrency": 4, "database": {"poolSize": 5, "maxOverflow": 2}},
                    "externalDatabase": {"maxConnections": 104, "reservedConnections": 7},
                },
            ),
            "(3 pods + 2 surge) x 4 workers x (poolSize 5 + maxOverflow 2 + 1 readiness) + 2"
            " migration = 162 connections, but externalDatabase.maxConnections 104 -"
            " reservedConnections 7 leaves 97.",
        ),
    ],
)
def test_a_budget_beyond_the_database_limit_is_refused_with_its_numbers(
    helm: str, tmp_path: Path, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(RenderError, match=re.escape(complaint)):
        helm_template(helm, values, tmp_path)


@pytest.mark.parametrize(
    ("base", "limit"),
    [
        (BUNDLED, {"postgresql": {"maxConnections": 93}}),
        (EXTERNAL, {"externalDatabase": {"maxConnections": 93}}),
    ],
)
def test_the_budget_may_fill_the_limit_but_not_one_more(
    helm: str, tmp_path: Path, base: dict[str, Any], limit: dict[str, Any]
) -> None:
    values = merge(merge(base, NINETY), limit)
    helm_template(helm, values, tmp_path)
    one_more = merge(values, {"config": {"database": {"maxOverflow": 1}}})  # 4 x 2 x 1 more
    with pytest.raises(RenderError, match=r"= 98 connections, but .* leaves 90\."):
        helm_template(helm, one_more, tmp_path)


def test_the_bundled_server_runs_with_the_checked_limit(render: Render) -> None:
    values = merge(
        BUNDLED, {"postgresql": {"maxConnections": 250, "superuserReservedConnections": 5}}
    )
    container = render(values).one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "-c",
        "max_connections=250",
        "-c",
        "superuser_reserved_connections=5",
    ]


def test_a_readiness_probe_may_need_several_successes(render: Render) -> None:
    values = merge(EXTERNAL, {"probes": {"readiness": {"successThreshold": 2}}})
    container = render(values).server["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["successThreshold"] == 2
