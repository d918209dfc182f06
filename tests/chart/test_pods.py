"""Every pod the chart renders is treated alike, and long names keep their suffixes.

The migration Job and the test pod get what the server gets; PostgreSQL the pull secrets.
"""

from __future__ import annotations

import pytest

from tests.chart.conftest import Render
from tests.chart.kube import Release
from tests.chart.value_sets import BUNDLED_POSTGRESQL, VALUE_SETS, merge

SCHEDULING = ("imagePullSecrets", "priorityClassName", "nodeSelector", "affinity", "tolerations")
DIGEST = "sha256:" + "c" * 64
LABEL_LIMIT = 63


@pytest.fixture(scope="module")
def everything_bundled(render: Render) -> Release:
    """Every pod value set, with the bundled PostgreSQL (so all four kinds of pod render)."""
    values = merge(
        merge(VALUE_SETS["everything-on"], BUNDLED_POSTGRESQL),
        {"postgresql": {"image": {"digest": DIGEST}}, "autoscaling": {"maxReplicas": 3}},
    )
    return render(values)


def _pod(release: Release, kind: str) -> dict:
    owner = release.one(kind)
    return owner["spec"] if kind == "Pod" else owner["spec"]["template"]


def test_the_job_and_the_test_pod_are_scheduled_like_the_server(
    everything_bundled: Release,
) -> None:
    server = _pod(everything_bundled, "Deployment")["spec"]
    assert all(server[key] for key in SCHEDULING)
    for kind in ("Job", "Pod"):
        pod = _pod(everything_bundled, kind)
        spec = pod if kind == "Pod" else pod["spec"]
        assert {key: spec.get(key) for key in SCHEDULING} == {k: server[k] for k in SCHEDULING}
    statefulset = _pod(everything_bundled, "StatefulSet")["spec"]
    assert statefulset["imagePullSecrets"] == server["imagePullSecrets"]


def test_the_job_gets_the_pod_labels_annotations_and_extra_env(
    everything_bundled: Release,
) -> None:
    server, job = _pod(everything_bundled, "Deployment"), _pod(everything_bundled, "Job")
    values = VALUE_SETS["everything-on"]
    assert values["podLabels"].items() <= job["metadata"]["labels"].items()
    assert job["metadata"]["annotations"] == values["podAnnotations"]
    assert values["podAnnotations"].items() <= server["metadata"]["annotations"].items()
    migrate = job["spec"]["containers"][0]
    assert values["extraEnv"][0] in migrate["env"]


def test_the_postgresql_digest_is_honoured(everything_bundled: Release) -> None:
    statefulset = _pod(everything_bundled, "StatefulSet")["spec"]["containers"][0]
    ensure = _pod(everything_bundled, "Job")["spec"]["initContainers"][0]
    assert statefulset["image"] == ensure["image"] == f"postgres:18.1@{DIGEST}"


@pytest.mark.parametrize("length", [31, 53])
def test_long_release_names_keep_their_suffixes(render: Render, length: int) -> None:
    external = render(VALUE_SETS["external-chart-secret"], release="r" * length)
    release = render(VALUE_SETS["bundled-postgresql"], release="r" * length)
    for rendered in (external, release):
        names = [(m["kind"], m["metadata"]["name"]) for m in rendered.manifests]
        assert [name for name in names if len(name[1]) > LABEL_LIMIT] == []
        assert len(set(names)) == len(names)
    assert external.one("Secret")["metadata"]["name"].endswith("-database")
    statefulset = release.one("StatefulSet")["metadata"]["name"]
    # Its pods' controller-revision-hash label is <name>-<10 characters>.
    assert len(f"{statefulset}-{'x' * 10}") <= LABEL_LIMIT
    assert statefulset.endswith("-postgresql")
    assert release.migration["metadata"]["name"].endswith("-migrate-install")
    assert release.one("Pod")["metadata"]["name"].endswith("-test-readiness")
