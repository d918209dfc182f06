"""PostgreSQL goes away and comes back: the service reports it, fails fast and heals itself."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from app.dev.embedded_postgres import EmbeddedPostgres, free_port
from tests.conftest import create_database

pytestmark = pytest.mark.slow
HEALTH_TIMEOUT = 1.0
POOL_TIMEOUT = 1.0


@pytest.fixture
def own_postgres(tmp_path_factory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL this test may stop and start without disturbing the others."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("outage") / "data", free_port())
    server.start()
    yield server
    server.stop()


def poll(url: str, expected: int, within: float, headers: dict[str, str] | None = None) -> float:
    """Wait until `url` answers `expected`; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            if httpx.get(url, headers=headers, timeout=within).status_code == expected:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer {expected} within {within} s")


def test_database_outage_and_recovery_without_restart(
    start_process, own_postgres, identity_env, identities
):
    database = create_database(own_postgres.url(), "outage")
    migrate = start_process(
        {"DATABASE_URL": database.url, "MIGRATION_DATABASE_URL": database.owner_url},
        command="migrate",
    )
    assert migrate.process.wait(60) == 0, migrate.output()
    server = start_process(
        {
            **identity_env,
            "DATABASE_URL": database.url,
            "DB_HEALTH_TIMEOUT": str(HEALTH_TIMEOUT),
            "DB_POOL_TIMEOUT": str(POOL_TIMEOUT),
            "DB_CONNECT_TIMEOUT": "2",
        }
    )
    server.wait_ready()
    tasks = server.base_url + "/api/v1/me/tasks"
    token = identities.headers("user-00")
    assert httpx.post(tasks, json={"title": "outlive the outage"}, headers=token).status_code == 201
    master, workers = server.pid, server.worker_pids()

    own_postgres.stop()

    assert poll(server.base_url + "/health/db", 503, within=HEALTH_TIMEOUT + 3) < HEALTH_TIMEOUT + 3
    assert httpx.get(server.base_url + "/health").status_code == 200
    started = time.monotonic()
    down = httpx.get(tasks, headers=token, timeout=10)
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert time.monotonic() - started < POOL_TIMEOUT + 2.5

    own_postgres.start()

    poll(server.base_url + "/health/db", 200, within=15)
    poll(tasks, 200, within=15, headers=token)
    for _ in range(10):
        reply = httpx.get(tasks, headers={"Connection": "close", **token})  # reach every worker
        assert reply.status_code == 200, server.output()[-4000:]
    assert httpx.get(tasks, headers=token).json()["items"][0]["title"] == "outlive the outage"
    assert (server.pid, server.worker_pids()) == (master, workers), "no process was restarted"
    assert server.stop() == 0
    assert "Traceback" not in server.output()
