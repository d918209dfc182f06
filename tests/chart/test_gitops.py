"""The chart under GitOps: Argo CD renders it with `helm template` and applies the result.

There is no `lookup` (so nothing generated can be read back), `.Release.IsInstall` is always
true, and a Job's pod template is immutable. With `gitOps.enabled` the same values must give
the very same manifests, the migration Job a new name whenever its spec changes, and the
sync waves the order helm's hooks give: database, then migration, then app.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.chart.conftest import Render
from tests.chart.kube import CHART, Release, RenderError, helm_template, hook_phases, sync_wave
from tests.chart.value_sets import BUNDLED_POSTGRESQL, GITOPS, IDENTITY, VALUE_SETS, merge

GITOPS_SETS = [name for name, values in VALUE_SETS.items() if values.get("gitOps")]
# Argo CD waves: what the Job needs, the Job, then the app (no annotation: wave 0).
DATABASE_WAVE, MIGRATION_WAVE = -2, -1
BEFORE_THE_JOB = {"Secret", "ServiceAccount", "NetworkPolicy", "StatefulSet"}


def test_gitops_value_sets_cover_both_database_modes() -> None:
    modes = {VALUE_SETS[name]["postgresql"]["enabled"] for name in GITOPS_SETS}
    assert modes == {True, False}


@pytest.mark.parametrize("name", [*GITOPS_SETS, "external-chart-secret", "everything-on"])
def test_the_same_values_render_byte_identical_manifests(
    helm: str, name: str, tmp_path: Path
) -> None:
    first = helm_template(helm, VALUE_SETS[name], tmp_path)
    second = helm_template(helm, VALUE_SETS[name], tmp_path)
    assert first == second


def test_generated_passwords_are_what_makes_a_helm_render_differ(helm: str, tmp_path: Path) -> None:
    """The control for the test above: the helm-mode defaults generate passwords each time."""
    first = helm_template(helm, VALUE_SETS["defaults"], tmp_path)
    second = helm_template(helm, VALUE_SETS["defaults"], tmp_path)
    assert first != second
    generated = re.compile(r'^  (postgres-password|password|runtime-password): ".*"$', re.M)
    assert generated.sub("", first) == generated.sub("", second)


@pytest.mark.parametrize("name", GITOPS_SETS)
def test_nothing_is_a_helm_hook(name: str, releases: dict[str, Release]) -> None:
    """No hook: Argo CD would run one as PreSync, before the database exists.

    `kubectl apply` ignores hooks; the helm test pod is left out (Argo CD never creates it).
    """
    release = releases[name]
    assert [m["kind"] for m in release.manifests if hook_phases(m)] == []
    assert release.all("Pod") == []


def test_bundled_postgresql_under_gitops_needs_an_existing_secret(
    helm: str, tmp_path: Path
) -> None:
    values = merge(merge(IDENTITY, BUNDLED_POSTGRESQL), GITOPS)
    with pytest.raises(
        RenderError,
        match=r"gitOps.enabled with the bundled PostgreSQL: set postgresql.auth.existingSecret",
    ):
        helm_template(helm, values, tmp_path)


@pytest.mark.parametrize("name", GITOPS_SETS)
def test_sync_waves_order_database_then_migration_then_app(
    name: str, releases: dict[str, Release]
) -> None:
    release = releases[name]
    job = release.migration
    assert sync_wave(job) == MIGRATION_WAVE
    for manifest in release.manifests:
        component = manifest["metadata"]["labels"].get("app.kubernetes.io/component")
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] in BEFORE_THE_JOB or component == "database":
            assert sync_wave(manifest) == DATABASE_WAVE, where
        elif manifest is not job:
            assert sync_wave(manifest) == 0, where
    pod = job["spec"]["template"]["spec"]
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        for variable in container["env"]:
            secret = variable.get("valueFrom", {}).get("secretKeyRef", {}).get("name")
            rendered = release.find("Secret", secret) if secret else None
            assert rendered is None or sync_wave(rendered) < MIGRATION_WAVE
    account = release.one("ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def _job_name(render: Render, values: dict, **overrides: object) -> str:
    name: str = render(merge(values, overrides)).migration["metadata"]["name"]
    return name


@pytest.mark.parametrize("name", GITOPS_SETS)
def test_a_new_job_for_every_change_of_its_spec_and_only_then(
    name: str, render: Render, releases: dict[str, Release]
) -> None:
    values = VALUE_SETS[name]
    job = releases[name].migration["metadata"]["name"]
    assert re.fullmatch(r"gw-groundwork-migrate-[0-9a-f]{10}", job)
    assert _job_name(render, values) == job
    assert _job_name(render, values, replicaCount=3, ingress={"enabled": True}) == job
    changed = {
        _job_name(render, values, image={"tag": "0.2.0"}),
        _job_name(render, values, image={"digest": "sha256:" + "b" * 64}),
        _job_name(render, values, migrations={"lockTimeout": 30}),
        _job_name(render, values, config={"database": {"connectTimeout": 9}}),
    }
    assert job not in changed
    assert len(changed) == 4
    assert render(values, upgrade=True).migration["metadata"]["name"] == job


def test_a_new_chart_version_gives_a_new_job(helm: str, tmp_path: Path) -> None:
    chart = shutil.copytree(CHART, tmp_path / "chart")
    metadata = yaml.safe_load((chart / "Chart.yaml").read_text())
    names = []
    for version in (metadata["version"], "99.0.0"):
        metadata["version"] = version
        (chart / "Chart.yaml").write_text(yaml.safe_dump(metadata))
        text = helm_template(helm, VALUE_SETS["gitops-external"], tmp_path, chart=chart)
        names.append(Release.parse(text).migration["metadata"]["name"])
    assert names[0] != names[1]


def test_job_name_keeps_its_hash_with_a_long_release_name(render: Render) -> None:
    release = "r" * 53
    job = render(VALUE_SETS["gitops-bundled"], release=release).migration["metadata"]["name"]
    assert len(job) <= 63
    assert re.search(r"-migrate-[0-9a-f]{10}$", job)
