"""`make run`: embedded PostgreSQL 18, migrations, gunicorn; data survives a restart."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from app.dev.embedded_postgres import EmbeddedPostgres, free_port
from tests.processes import ServerProcess
from tests.support import PROJECT_ROOT

pytestmark = pytest.mark.slow
STARTUP_LIMIT_SECONDS = 10


def start_dev_server(start_process, workdir, postgres_port: int) -> ServerProcess:
    # `make run` works in the project folder; here a scratch folder holds .data/ instead.
    return start_process(
        {
            "EMBEDDED_POSTGRES_PORT": str(postgres_port),
            "ENV": "dev",
            "PYTHONPATH": str(PROJECT_ROOT),
        },
        command="dev",
        cwd=workdir,
    )


def test_make_run_serves_and_keeps_data_between_runs(start_process, tmp_path):
    postgres_port = free_port()
    first = start_dev_server(start_process, tmp_path, postgres_port)
    assert first.wait_ready(timeout=STARTUP_LIMIT_SECONDS) < STARTUP_LIMIT_SECONDS
    user = httpx.post(
        first.base_url + "/api/v1/users", json={"email": "kept@example.com", "full_name": "Kept"}
    ).json()
    task = httpx.post(
        f"{first.base_url}/api/v1/users/{user['id']}/tasks", json={"title": "survive a restart"}
    ).json()

    os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
    assert first.process.wait(30) == 0, first.output()
    data_dir = tmp_path / ".data" / "postgres"
    assert (data_dir / "PG_VERSION").exists()
    assert not EmbeddedPostgres(data_dir, postgres_port).is_running

    second = start_dev_server(start_process, tmp_path, postgres_port)
    second.wait_ready()
    fetched = httpx.get(f"{second.base_url}/api/v1/users/{user['id']}/tasks/{task['id']}")
    assert fetched.json()["title"] == "survive a restart"


def test_make_run_stopped_alone_takes_gunicorn_and_postgres_with_it(start_process, tmp_path):
    postgres_port = free_port()
    server = start_dev_server(start_process, tmp_path, postgres_port)
    server.wait_ready()

    server.process.send_signal(signal.SIGTERM)  # an IDE or `kill`: this process, not its group

    assert server.process.wait(30) == 0, server.output()
    assert not EmbeddedPostgres(tmp_path / ".data" / "postgres", postgres_port).is_running
    with pytest.raises(ProcessLookupError):  # no gunicorn master or worker left behind
        os.killpg(server.pid, 0)
