"""`make run`: embedded PostgreSQL 18 and OpenID Provider, migrations, gunicorn.

Data and keys survive a restart, and stopping it stops everything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal

import httpx
import psutil
import pytest

from app.dev.embedded_postgres import EmbeddedPostgres, free_port
from app.dev.identity_provider import PROVIDER_SCRIPT
from tests.identity import require_identity_provider
from tests.processes import ServerProcess, is_listening
from tests.support import PROJECT_ROOT

pytestmark = pytest.mark.slow
# Generous: on a loaded machine everything is slower; how fast it starts is make bench's job.
STARTUP_TIMEOUT_SECONDS = 60
TASKS = "/api/v1/me/tasks"
# What the printed curl command sends (app/__main__.py prints it for people to copy).
CLI_CLIENT = ("groundwork-cli", "groundwork-dev-secret")
CLI_SCOPES = "tasks:read tasks:write"


@pytest.fixture(autouse=True)
def _provider_installed() -> None:
    require_identity_provider()


def issuer(oidc_port: int) -> str:
    return f"http://127.0.0.1:{oidc_port}"


def dev_token(oidc_port: int) -> dict[str, str]:
    """The Authorization header with a token fetched exactly as the printed curl does."""
    response = httpx.post(
        f"{issuer(oidc_port)}/token",
        auth=CLI_CLIENT,
        data={"grant_type": "client_credentials", "scope": CLI_SCOPES},
        timeout=10,
    )
    assert response.status_code == httpx.codes.OK, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def start_dev_server(
    start_process, workdir, postgres_port: int, oidc_port: int, **env: str
) -> ServerProcess:
    # `make run` works in the project folder; here a scratch folder holds .data/ instead.
    return start_process(
        {
            "EMBEDDED_POSTGRES_PORT": str(postgres_port),
            "DEV_OIDC_PORT": str(oidc_port),
            "ENV": "dev",
            "PYTHONPATH": str(PROJECT_ROOT),
            **env,
        },
        command="dev",
        cwd=workdir,
    )


def started_processes(server: ServerProcess) -> dict[psutil.Process, str]:
    """The processes `server` has started and their command lines, taken now."""
    started = {}
    for process in server.descendants():
        with contextlib.suppress(psutil.NoSuchProcess):  # such as a database connection's
            started[process] = " ".join(process.cmdline())
    return started


def assert_everything_stopped(
    server: ServerProcess, started: dict[psutil.Process, str], postgres_port: int, oidc_port: int
) -> None:
    """The command exited 0; gunicorn, its workers, PostgreSQL and the provider are gone."""
    assert server.process is not None
    assert server.process.wait(30) == 0, server.output()
    commands = list(started.values())
    assert sum("gunicorn" in command for command in commands) == 3, "a master, two workers"
    assert sum(PROVIDER_SCRIPT.name in command for command in commands) == 1, commands
    _, alive = psutil.wait_procs(list(started), timeout=5)
    assert alive == [], f"left running: {alive}"
    assert not EmbeddedPostgres(server.cwd / ".data" / "postgres", postgres_port).is_running
    assert not is_listening(oidc_port)


def test_make_run_serves_and_keeps_data_and_keys_between_runs(start_process, tmp_path):
    postgres_port, oidc_port = free_port(), free_port()
    first = start_dev_server(start_process, tmp_path, postgres_port, oidc_port)
    first.wait_ready(timeout=STARTUP_TIMEOUT_SECONDS)
    first.wait_workers_started()
    before_restart = dev_token(oidc_port)
    assert httpx.get(first.base_url + TASKS).status_code == httpx.codes.UNAUTHORIZED
    created = httpx.post(
        first.base_url + TASKS, json={"title": "survive a restart"}, headers=before_restart
    )
    assert created.status_code == httpx.codes.CREATED, created.text
    task_url = first.base_url + created.headers["location"]
    started = started_processes(first)

    os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
    assert_everything_stopped(first, started, postgres_port, oidc_port)
    assert (tmp_path / ".data" / "postgres" / "PG_VERSION").exists()
    assert (tmp_path / ".data" / "oidc" / "jwks.json").exists()

    second = start_dev_server(start_process, tmp_path, postgres_port, oidc_port)
    second.wait_ready(timeout=STARTUP_TIMEOUT_SECONDS)
    second.wait_workers_started()
    task_url = task_url.replace(first.base_url, second.base_url)
    # The provider's keys were kept, so a token issued before the restart is still good.
    for token in (before_restart, dev_token(oidc_port)):
        fetched = httpx.get(task_url, headers={"Connection": "close", **token})
        assert fetched.status_code == httpx.codes.OK, fetched.text
        assert fetched.json()["title"] == "survive a restart"


def test_make_run_says_how_to_get_a_token(start_process, tmp_path):
    oidc_port = free_port()
    server = start_dev_server(start_process, tmp_path, free_port(), oidc_port)
    server.wait_ready(timeout=STARTUP_TIMEOUT_SECONDS)

    server.stop(signal.SIGINT)

    output = server.output()
    assert f"development OpenID Provider on {issuer(oidc_port)}" in output
    assert (
        "curl -s -u groundwork-cli:groundwork-dev-secret -d grant_type=client_credentials"
        f" -d 'scope=tasks:read tasks:write' {issuer(oidc_port)}/token"
    ) in output
    assert f'curl -H "Authorization: Bearer $TOKEN" {server.base_url}{TASKS}' in output
    assert f"{server.base_url}/docs, Authorize, groundwork-docs" in output


def test_make_run_stopped_alone_takes_gunicorn_postgres_and_the_provider_with_it(
    start_process, tmp_path
):
    postgres_port, oidc_port = free_port(), free_port()
    server = start_dev_server(start_process, tmp_path, postgres_port, oidc_port)
    server.wait_ready(timeout=STARTUP_TIMEOUT_SECONDS)
    server.wait_workers_started()
    assert is_listening(oidc_port)
    started = started_processes(server)
    assert server.process is not None

    server.process.send_signal(signal.SIGTERM)  # an IDE or `kill`: this process, not its group

    assert_everything_stopped(server, started, postgres_port, oidc_port)
    with pytest.raises(ProcessLookupError):  # no gunicorn master or worker left behind
        os.killpg(server.pid, 0)


@pytest.mark.parametrize(
    ("configured", "embedded"), [("postgres", "oidc"), ("oidc", "postgres"), ("both", None)]
)
def test_make_run_embeds_only_what_is_not_configured(
    start_process, tmp_path, database, identity_env, identities, configured, embedded
):
    ports = {"postgres": free_port(), "oidc": free_port()}
    env = {}
    if configured in {"postgres", "both"}:
        env |= {"DATABASE_URL": database.url, "MIGRATION_DATABASE_URL": database.owner_url}
    if configured in {"oidc", "both"}:
        env |= identity_env
    server = start_dev_server(start_process, tmp_path, ports["postgres"], ports["oidc"], **env)
    server.wait_ready(timeout=STARTUP_TIMEOUT_SECONDS)

    # The tokens of whichever provider is in use are the ones accepted.
    token = dev_token(ports["oidc"]) if embedded == "oidc" else identities.headers("user-00")
    me = httpx.get(server.base_url + "/api/v1/me", headers=token)
    assert me.status_code == httpx.codes.OK, me.text
    for part, port in ports.items():
        assert (tmp_path / ".data" / part).exists() == (part == embedded), part
        assert is_listening(port) == (part == embedded), part
    assert server.stop(signal.SIGINT) == 0
    printed = {
        "postgres": "embedded PostgreSQL" in server.output(),
        "oidc": "development OpenID Provider" in server.output(),
    }
    assert printed == {part: part == embedded for part in ports}
