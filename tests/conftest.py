"""Fixtures on a real PostgreSQL: a throwaway embedded PostgreSQL 18, or TEST_DATABASE_URL.

The schema is built by Alembic, as in production, and every test starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import sql
from sqlalchemy.engine import make_url

from alembic import command
from app.core.config import Settings
from app.db.migrations import alembic_config
from app.dev.embedded_postgres import EmbeddedPostgres, ensure_app_database, free_port
from app.main import create_app
from tests.processes import ServerProcess
from tests.support import DatabaseInfo

APP_ROLE = "groundwork_test"
APP_PASSWORD = "s3cr3t-test-password"


@pytest.fixture(scope="session")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A superuser URL: TEST_DATABASE_URL, or a throwaway embedded PostgreSQL 18."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "data", free_port())
    server.start()
    try:
        yield server.url()
    finally:
        server.stop()


def create_database(admin_url: str, name: str) -> DatabaseInfo:
    """Create an empty database owned by the non-superuser test role."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    ensure_app_database(admin_url, APP_ROLE, name, password=APP_PASSWORD)
    url = make_url(admin_url).set(
        drivername="postgresql", username=APP_ROLE, password=APP_PASSWORD, database=name
    )
    admin = make_url(admin_url).set(database=name)
    return DatabaseInfo(
        url=url.render_as_string(hide_password=False),
        admin_url=admin.render_as_string(hide_password=False),
        password=APP_PASSWORD,
    )


@pytest.fixture(scope="session")
def database(admin_url: str) -> DatabaseInfo:
    """The test database, migrated to head by Alembic."""
    info = create_database(admin_url, f"groundwork_test_{os.getpid()}")
    command.upgrade(alembic_config(make_url(info.url).set(drivername="postgresql+psycopg")), "head")
    return info


@pytest.fixture(scope="session")
def settings(database: DatabaseInfo) -> Settings:
    """Settings for the in-process app; nothing is read from .env or the environment's DB."""
    return Settings(_env_file=None, database_url=database.url, env="dev", db_pool_size=5)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The application with its lifespan running (pool open)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start `python -m app <command>` processes that stop when the test ends, however it ends."""
    started: list[ServerProcess] = []

    def start(
        env: dict[str, str], command: str = "serve", cwd: Path | None = None
    ) -> ServerProcess:
        process = ServerProcess(tmp_path, env, command)
        process.cwd = cwd or process.cwd
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def server(start_process: Callable[..., ServerProcess], database: DatabaseInfo) -> ServerProcess:
    """The production server (gunicorn, two workers) on the test database, every worker up."""
    process = start_process({"DATABASE_URL": database.url})
    process.wait_ready()
    process.wait_workers_started()
    return process


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give every database test empty tables, however the previous test ended."""
    yield
    if "database" in request.fixturenames:
        info: DatabaseInfo = request.getfixturevalue("database")
        with psycopg.connect(info.admin_url, autocommit=True) as connection:
            connection.execute("TRUNCATE users, tasks CASCADE")
