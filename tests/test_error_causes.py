"""Database failures name their real cause in the log, readiness and `migrate`, never a secret.

Each cause is produced for real on the test PostgreSQL: pg_hba.conf rules for authentication
and TLS, a database with no connection slots, a port that accepts and never answers, a row lock
held by another session. Clients get one problem type for a busy database and another for an
unreachable one, each with its own Retry-After.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from app.core.config import LogFormat, Settings
from app.core.errors import PROBLEM_TYPE_BASE
from app.core.logging import configure_logging
from app.main import create_app
from tests.conftest import APP_PASSWORD, APP_ROLE, create_database, migrate
from tests.support import assert_problem

WRONG_PASSWORD = "wr0ng-secret-never-logged"
AUTH_DATABASE = "causes_auth"
TLS_DATABASE = "causes_tls"
FULL_DATABASE = "causes_full"
HBA_RULES = (
    f"host {AUTH_DATABASE} all 127.0.0.1/32 scram-sha-256\n"
    f"hostnossl {TLS_DATABASE} all 127.0.0.1/32 reject\n"
)


def _hba_file(admin_url: str) -> Path:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        row = connection.execute("SHOW hba_file").fetchone()
    assert row is not None
    return Path(row[0])


def _reload(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="module")
def hba_rules(admin_url: str) -> Iterator[None]:
    """Password authentication for one database name, plain connections refused for another."""
    hba = _hba_file(admin_url)
    if not hba.exists() or not hba.is_file():
        pytest.skip("pg_hba.conf of TEST_DATABASE_URL's server is not on this machine")
    original = hba.read_text()
    hba.write_text(HBA_RULES + original)
    _reload(admin_url)
    probe = make_url(admin_url).set(database=TLS_DATABASE, username=APP_ROLE, password=APP_PASSWORD)
    deadline = time.monotonic() + 10
    while True:  # the postmaster rereads the file after the signal, not at once
        try:
            psycopg.connect(probe.render_as_string(hide_password=False)).close()
        except psycopg.OperationalError as error:
            if "no encryption" in str(error):
                break
        assert time.monotonic() < deadline, "pg_hba.conf rules did not take effect"
        time.sleep(0.05)
    try:
        yield
    finally:
        hba.write_text(original)
        _reload(admin_url)


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture(scope="module")
def broken_urls(database, admin_url, hba_rules, silent_port) -> dict[str, str]:
    """A runtime URL for each connection failure, by the cause it must be reported as."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(FULL_DATABASE))
        )
        connection.execute(
            sql.SQL("CREATE DATABASE {} CONNECTION LIMIT 0").format(sql.Identifier(FULL_DATABASE))
        )
    url = make_url(database.url)

    def variant(**parts: Any) -> str:
        return url.set(**parts).render_as_string(hide_password=False)

    return {
        "authentication failed": variant(database=AUTH_DATABASE, password=WRONG_PASSWORD),
        "no such database": variant(database="causes_no_such_database"),
        "no such role": variant(username="causes_nobody"),
        "connection refused": variant(port=1),
        # Without TLS libpq tries once, not twice: one connect timeout per attempt.
        "timed out": variant(port=silent_port, query={"sslmode": "disable"}),
        "too many connections": variant(database=FULL_DATABASE),
        "TLS required": variant(database=TLS_DATABASE),
    }


@pytest.fixture
def json_logs(capsys):
    def lines() -> list[dict]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    yield lines
    configure_logging("INFO", LogFormat.CONSOLE)


async def _requests(settings: Settings, identity_settings, headers) -> tuple[httpx.Response, ...]:
    app = create_app(settings, identity_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        return (await client.get("/health/db"), await client.get("/api/v1/me", headers=headers))


def _prod_settings(url: str, **fields: Any) -> Settings:
    return Settings(_env_file=None, database_url=url, env="prod", db_connect_timeout=1, **fields)  # type: ignore[call-arg]


BUSY = {"too many connections"}
# Readiness gives up after DB_HEALTH_TIMEOUT, before the connect timeout names the cause.
READINESS_REASONS = {"timed out": "the database did not answer in time"}


@pytest.mark.parametrize(
    "cause",
    [
        "authentication failed",
        "no such database",
        "no such role",
        "connection refused",
        "timed out",
        "too many connections",
        "TLS required",
    ],
)
async def test_connection_failures_name_their_cause(
    broken_urls, cause, identity_settings, identities, json_logs
):
    headers = identities.headers("user-01")
    json_logs()
    readiness, api = await _requests(_prod_settings(broken_urls[cause]), identity_settings, headers)

    logged = json_logs()
    reason = READINESS_REASONS.get(cause, f"the database is unreachable ({cause})")
    assert assert_problem(readiness, 503)["detail"] == reason
    body = assert_problem(api, 503)
    kind = "database-busy" if cause in BUSY else "database-unreachable"
    assert body["type"] == PROBLEM_TYPE_BASE + kind
    assert api.headers["retry-after"] == ("5" if cause in BUSY else "1")
    events = {
        (line["event"], line.get("cause") or line.get("error") or line.get("reason"))
        for line in logged
    }
    assert ("database_unavailable_at_startup", cause) in events
    assert (kind.replace("-", "_"), cause) in events
    assert WRONG_PASSWORD not in str(logged) + readiness.text + api.text
    assert APP_PASSWORD not in str(logged)


def test_migrate_says_authentication_failed_in_one_line(broken_urls, start_process, database):
    migrate_url = broken_urls["authentication failed"]
    process = start_process(
        {
            "DATABASE_URL": database.url,
            "MIGRATION_DATABASE_URL": migrate_url,
            "MIGRATION_WAIT_TIMEOUT": "1",
        },
        command="migrate",
    )
    assert process.process is not None
    assert process.process.wait(30) == 1

    output = process.output()
    failed = [line for line in output.splitlines() if '"migrations_failed"' in line]
    assert len(failed) == 1, output
    reason = json.loads(failed[0])["reason"]
    assert reason == "could not connect to the database within 1 s: authentication failed"
    assert WRONG_PASSWORD not in output
    assert "Traceback" not in output


async def _busy_answer(settings: Settings, identity_settings, headers, locked) -> httpx.Response:
    app = create_app(settings, identity_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
        with locked():
            return await client.patch("/api/v1/me", json={"full_name": "x"}, headers=headers)


def _lock(url: str):
    class Locked:
        def __enter__(self) -> None:
            self.connection = psycopg.connect(url)
            self.connection.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")

        def __exit__(self, *_: object) -> None:
            self.connection.rollback()
            self.connection.close()

    return Locked


async def test_a_statement_timeout_on_a_lock_wait_is_busy_not_unreachable(
    database, identity_settings, identities, json_logs
):
    settings = _prod_settings(database.url, db_statement_timeout_ms=300)
    headers = identities.headers("user-02")
    json_logs()

    response = await _busy_answer(settings, identity_settings, headers, _lock(database.admin_url))

    body = assert_problem(response, 503)
    assert body["type"] == PROBLEM_TYPE_BASE + "database-busy"
    assert body["detail"] == "The database is busy (statement timeout); retry later."
    assert response.headers["retry-after"] == "5"
    assert any(
        line["event"] == "database_busy" and line["cause"] == "statement timeout"
        for line in json_logs()
    )


@pytest.fixture(scope="module")
def lock_timeout_database(admin_url):
    """A migrated database whose sessions give up on a lock after 200 ms."""
    info = create_database(admin_url, "causes_lock_timeout")
    migrate(info)
    with psycopg.connect(info.admin_url, autocommit=True) as connection:
        connection.execute("ALTER DATABASE causes_lock_timeout SET lock_timeout = '200ms'")
    return info


async def test_a_lock_timeout_is_busy(
    lock_timeout_database, identity_settings, identities, json_logs
):
    settings = _prod_settings(lock_timeout_database.url)
    headers = identities.headers("user-03")
    json_logs()

    locked = _lock(lock_timeout_database.admin_url)
    response = await _busy_answer(settings, identity_settings, headers, locked)

    body = assert_problem(response, 503)
    assert body["type"] == PROBLEM_TYPE_BASE + "database-busy"
    assert "lock timeout" in body["detail"]
    assert response.headers["retry-after"] == "5"
    assert any(line.get("cause") == "lock timeout" for line in json_logs())
