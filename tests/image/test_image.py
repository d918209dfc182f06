"""The production image, built from the real Dockerfile and run the way the chart runs it.

The chart is rendered by the real helm for an external database (the test's PostgreSQL) and
the test OpenID Provider; its migration Job runs first from the image, as the owner role, then
its Deployment's container, as the runtime role: the rendered command, environment, user and
group, read-only root, dropped capabilities and emptyDirs (as tmpfs), so a write anywhere else
would make the server fail. The containers share the host's network, so they reach the
PostgreSQL and the provider that listen on 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.db.migrations import head_revisions
from app.dev.embedded_postgres import free_port
from app.dev.identity_provider import DevIdentityProvider
from tests.chart.conftest import Render
from tests.chart.kube import Release
from tests.chart.rehearsal import database_roles
from tests.conftest import APP_ROLE, OWNER_ROLE, create_database
from tests.identity import AUDIENCE, Identities
from tests.image.podman import CONTAINER_PREFIX, REPORT, PodContainer, Podman, wait_until_ready

pytestmark = pytest.mark.slow

IMAGE_FILES = [".venv", "alembic", "alembic.ini", "app"]
DATABASE = "groundwork_image_test"
TASKS = "/api/v1/me/tasks"
# The chart wants an https:// issuer when config.env is prod; the test provider is plain HTTP.
ENVIRONMENT = "staging"


@dataclass(frozen=True)
class Server:
    """A running container of the Deployment and where it listens."""

    name: str
    base_url: str
    pod: PodContainer


@pytest.fixture(scope="module")
def release(render: Render, admin_url: str, identity_provider: DevIdentityProvider) -> Release:
    """The chart rendered for an empty external database and the test provider.

    The runtime role's URL and password (the pods) and the owner's (the Job) are in its Secret.
    """
    database = create_database(admin_url, DATABASE)
    owner = make_url(database.owner_url)
    values = {
        "config": {"env": ENVIRONMENT},
        "oidc": {"issuer": identity_provider.issuer, "audience": AUDIENCE},
        "postgresql": {"enabled": False},
        "externalDatabase": {
            "url": make_url(database.url).set(password=None).render_as_string(),
            "password": database.password,
            "migrationUrl": owner.set(password=None).render_as_string(),
            "migrationPassword": owner.password,
        },
    }
    return render(values)


@pytest.fixture(scope="module")
def migrated(
    podman: Podman, image: str, release: Release, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The migration Job's container has run to success: the pods may start."""
    job = PodContainer.from_workload(
        release, release.migration, {}, tmp_path_factory.mktemp("migrate")
    )
    name = f"{CONTAINER_PREFIX}migrate"
    result = podman("run", "--rm", *job.run_arguments(name, image), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def start_server(podman: Podman, image: str, release: Release, name: str, files: Path) -> Server:
    """Start the Deployment's container on a free port; wait for its readiness probe."""
    pod = PodContainer.from_workload(release, release.server, {"PORT": str(free_port())}, files)
    server = Server(f"{CONTAINER_PREFIX}{name}", f"http://127.0.0.1:{pod.env['PORT']}", pod)
    podman("run", "--detach", *pod.run_arguments(server.name, image))
    wait_until_ready(podman, server.name, f"{server.base_url}{pod.readiness_path}")
    return server


@pytest.fixture(scope="module")
def server(
    podman: Podman,
    image: str,
    release: Release,
    migrated: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """The Deployment's container serving on the migrated database."""
    server = start_server(podman, image, release, "serve", tmp_path_factory.mktemp("serve"))
    yield server
    podman("rm", "--force", server.name)


def test_image_holds_only_the_venv_and_the_code(podman: Podman, image: str) -> None:
    # As root, so that nothing is hidden by permissions.
    listing = podman(
        "run", "--rm", "--network=none", "--user=0", image, "sh", "-c",
        "ls -A /app; echo ---;"
        " ls /app/.venv/bin; echo ---;"
        " find / -xdev -type f \\( -name uv -o -name uvx -o -name node \\);"
        " for tool in gcc cc make git; do command -v $tool; done; echo ---;"
        " find /app/app -name '*.pyc' | head -n 1; echo ---;"
        " find /app ! -user root -print -quit; echo ---;"
        " ls -A /app/app/dev/oidc",
    ).stdout.split("---\n")  # fmt: skip
    files, venv_tools, build_tools, compiled, not_root_owned, oidc = listing
    assert files.split() == IMAGE_FILES
    assert "node_modules" not in oidc.split(), "the development provider's packages stay out"
    assert "provider.mjs" in oidc.split()
    assert not_root_owned.split() == [], "the app's user must not own (and change) its code"
    assert not {"pip", "pip3", "uv", "uvx"} & set(venv_tools.split())
    assert build_tools.split() == []
    assert compiled.strip(), "the application code is not bytecode-compiled"


def test_image_defaults_match_the_contract_and_the_chart(
    podman: Podman, image: str, release: Release
) -> None:
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    env = dict(variable.split("=", 1) for variable in config["Env"])
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["python", "-m", "app", "serve"]
    assert config["Cmd"] == release.server["spec"]["template"]["spec"]["containers"][0]["command"]
    assert config["WorkingDir"] == "/app"
    assert "8000/tcp" in config["ExposedPorts"]
    assert env["PATH"].startswith("/app/.venv/bin:")
    assert {name: env[name] for name in ("HOST", "PORT", "ENV", "PROMETHEUS_MULTIPROC_DIR")} == {
        "HOST": "0.0.0.0",
        "PORT": "8000",
        "ENV": "prod",
        "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics",
    }
    assert env["PYTHONUNBUFFERED"] == "1"


def test_health_probes_answer(server: Server) -> None:
    assert httpx.get(f"{server.base_url}/health").status_code == 200
    ready = httpx.get(f"{server.base_url}/health/db")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "revision": head_revisions()[0]}


async def test_authenticated_task_round_trip(server: Server, identities: Identities) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        refused = await client.get(TASKS)
        client.headers.update(identities.headers("user-00"))
        created = await client.post(TASKS, json={"title": "Ship the image"})
        fetched = await client.get(created.headers["location"])
        listed = await client.get(TASKS)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert created.status_code == 201, created.text
    assert fetched.json() == created.json()
    assert [item["id"] for item in listed.json()["items"]] == [created.json()["id"]]


def test_the_job_migrated_as_the_owner_and_the_server_connects_as_the_runtime_role(
    admin_url: str, server: Server
) -> None:
    assert database_roles(admin_url, DATABASE) == ({OWNER_ROLE}, {APP_ROLE})


async def test_metrics_aggregate_the_workers(server: Server, identities: Identities) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for _ in range(10):
            response = await client.get(TASKS, headers=identities.headers("user-01"))
            assert response.status_code == 200
        metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert f'groundwork_build_info{{environment="{ENVIRONMENT}"' in metrics.text
    listed = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.text.splitlines()
        if line.startswith("http_requests_total{")
        and f'handler="{TASKS}"' in line
        and 'method="GET"' in line
    ]
    assert sum(listed) >= 10


def test_runs_as_the_numeric_non_root_user(podman: Podman, server: Server) -> None:
    identity = podman("exec", server.name, "id").stdout
    assert identity.startswith("uid=10001(groundwork) gid=10001(groundwork)")


def test_writes_only_to_the_declared_mounts(podman: Podman, server: Server) -> None:
    read_only = podman("exec", server.name, "touch", "/app/written", check=False)
    assert read_only.returncode != 0
    assert "Read-only file system" in read_only.stderr
    metric_files = podman("exec", server.name, "ls", "/tmp/metrics").stdout.split()
    assert any(name.endswith(".db") for name in metric_files)


def test_sigterm_stops_the_server_within_the_grace_period(
    podman: Podman, image: str, release: Release, migrated: None, tmp_path: Path
) -> None:
    server = start_server(podman, image, release, "stop", tmp_path)
    # The kubelet spends the preStop pause first; SIGTERM gets the rest of the grace period.
    budget = server.pod.grace_period_seconds - server.pod.pre_stop_sleep_seconds
    started = time.monotonic()
    podman("stop", f"--time={budget}", server.name)
    stopped_after = time.monotonic() - started
    exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", server.name).stdout.strip()
    logs = podman.logs(server.name)
    podman("rm", server.name)
    assert exit_code == "0", logs
    assert stopped_after < budget
    REPORT.lines.append(f"SIGTERM to exit code 0 in {stopped_after:.1f} s (budget {budget} s)")
