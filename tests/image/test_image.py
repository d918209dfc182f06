"""The production image, built from the real Dockerfile and run the way the chart runs it.

The chart is rendered by the real helm for an external database (the test's PostgreSQL); its
migration Job runs first from the image, then its Deployment's container: the rendered
command, environment, user and group, read-only root, dropped capabilities and emptyDirs
(as tmpfs), so a write anywhere else would make the server fail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.dev.embedded_postgres import free_port
from tests.chart.conftest import Render
from tests.chart.kube import Release
from tests.conftest import create_database
from tests.image.podman import CONTAINER_PREFIX, REPORT, PodContainer, Podman, wait_until_ready
from tests.support import create_task, create_user

pytestmark = pytest.mark.slow

IMAGE_FILES = [".venv", "alembic", "alembic.ini", "app"]


@dataclass(frozen=True)
class Server:
    """A running container of the Deployment and where it listens."""

    name: str
    base_url: str
    pod: PodContainer


@pytest.fixture(scope="module")
def release(render: Render, admin_url: str) -> Release:
    """The chart rendered for an empty external database: URL and password in its Secret."""
    database = create_database(admin_url, "groundwork_image_test")
    values = {
        "postgresql": {"enabled": False},
        "externalDatabase": {
            "url": make_url(database.url).set(password=None).render_as_string(),
            "password": database.password,
        },
    }
    return render(values)


@pytest.fixture(scope="module")
def migrated(podman: Podman, image: str, release: Release) -> None:
    """The migration Job's container has run to success: the pods may start."""
    job = PodContainer.from_workload(release, release.migration, {})
    name = f"{CONTAINER_PREFIX}migrate"
    result = podman("run", "--rm", *job.run_arguments(name, image), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def start_server(podman: Podman, image: str, release: Release, name: str) -> Server:
    """Start the Deployment's container on a free port; wait for its readiness probe."""
    pod = PodContainer.from_workload(release, release.server, {"PORT": str(free_port())})
    server = Server(f"{CONTAINER_PREFIX}{name}", f"http://127.0.0.1:{pod.env['PORT']}", pod)
    podman("run", "--detach", *pod.run_arguments(server.name, image))
    wait_until_ready(podman, server.name, f"{server.base_url}{pod.readiness_path}")
    return server


@pytest.fixture(scope="module")
def server(podman: Podman, image: str, release: Release, migrated: None) -> Iterator[Server]:
    """The Deployment's container serving on the migrated database."""
    server = start_server(podman, image, release, "serve")
    yield server
    podman("rm", "--force", server.name)


def test_image_holds_only_the_venv_and_the_code(podman: Podman, image: str) -> None:
    # As root, so that nothing is hidden by permissions.
    listing = podman(
        "run", "--rm", "--network=none", "--user=0", image, "sh", "-c",
        "ls -A /app; echo ---;"
        " ls /app/.venv/bin; echo ---;"
        " find / -xdev -type f \\( -name uv -o -name uvx \\);"
        " for tool in gcc cc make git; do command -v $tool; done; echo ---;"
        " find /app/app -name '*.pyc' | head -n 1; echo ---;"
        " find /app ! -user root -print -quit",
    ).stdout.split("---\n")  # fmt: skip
    files, venv_tools, build_tools, compiled, not_root_owned = listing
    assert files.split() == IMAGE_FILES
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
    assert ready.json() == {"status": "ok", "revision": "0001"}


async def test_user_and_task_round_trip(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        user = await create_user(client, email="image@example.com")
        task = await create_task(client, user["id"], title="Ship the image")
        fetched = await client.get(f"/api/v1/users/{user['id']}/tasks/{task['id']}")
        listed = await client.get(f"/api/v1/users/{user['id']}/tasks")
    assert fetched.json() == task
    assert [item["id"] for item in listed.json()["items"]] == [task["id"]]


async def test_metrics_aggregate_the_workers(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for _ in range(10):
            assert (await client.get("/api/v1/users")).status_code == 200
        metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'groundwork_build_info{environment="prod"' in metrics.text
    listed = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.text.splitlines()
        if line.startswith("http_requests_total{")
        and 'handler="/api/v1/users"' in line
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
    podman: Podman, image: str, release: Release, migrated: None
) -> None:
    server = start_server(podman, image, release, "stop")
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
