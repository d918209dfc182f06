"""Fixtures on a real PostgreSQL and a real OpenID Provider.

PostgreSQL: a throwaway embedded PostgreSQL 18, or TEST_DATABASE_URL. The schema is built by
Alembic as the owner role, as in production; the app connects as the runtime role; every test
starts from empty tables. Identity: the development OpenID Provider (oidc-provider), whose
clients are the test identities.
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
from app.dev.identity_provider import DevIdentityProvider
from app.identity.settings import IdentitySettings
from app.main import create_app
from tests.identity import AUDIENCE, TEST_CLIENTS, Identities, require_identity_provider
from tests.processes import ServerProcess
from tests.support import DatabaseInfo

APP_ROLE = "groundwork_test"
APP_PASSWORD = "s3cr3t-test-password"
OWNER_ROLE = "groundwork_test_owner"
OWNER_PASSWORD = "s3cr3t-owner-password"


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
    """Create an empty database owned by the owner role; the runtime role may connect."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    ensure_app_database(
        admin_url, name, OWNER_ROLE, APP_ROLE, {OWNER_ROLE: OWNER_PASSWORD, APP_ROLE: APP_PASSWORD}
    )

    def url_of(role: str | None = None, password: str | None = None) -> str:
        url = make_url(admin_url).set(drivername="postgresql", database=name)
        if role is not None:
            url = url.set(username=role, password=password)
        return url.render_as_string(hide_password=False)

    return DatabaseInfo(
        url=url_of(APP_ROLE, APP_PASSWORD),
        owner_url=url_of(OWNER_ROLE, OWNER_PASSWORD),
        admin_url=url_of(),
        password=APP_PASSWORD,
    )


def migrate(info: DatabaseInfo) -> None:
    """Upgrade `info`'s database to head as the owner, granting the runtime role its rights."""
    owner = make_url(info.owner_url).set(drivername="postgresql+psycopg")
    command.upgrade(alembic_config(owner, runtime_role=APP_ROLE), "head")


@pytest.fixture(scope="session")
def database(admin_url: str) -> DatabaseInfo:
    """The test database, migrated to head by Alembic."""
    info = create_database(admin_url, f"groundwork_test_{os.getpid()}")
    migrate(info)
    return info


@pytest.fixture(scope="session")
def identity_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdentityProvider]:
    """The development OpenID Provider with the test identities as its clients."""
    require_identity_provider()
    provider = DevIdentityProvider(
        tmp_path_factory.mktemp("oidc"),
        free_port(),
        AUDIENCE,
        TEST_CLIENTS,
        account_roles={"admin": ["admin"]},
    )
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="session")
def identities(identity_provider: DevIdentityProvider) -> Identities:
    """Access tokens of the test identities, fetched from the provider once each."""
    return Identities(identity_provider)


@pytest.fixture(scope="session")
def identity_settings(identity_provider: DevIdentityProvider) -> IdentitySettings:
    """Trust the test provider, exactly as a deployment trusts its own."""
    return IdentitySettings(
        _env_file=None,  # type: ignore[call-arg]
        oidc_issuer=identity_provider.issuer,
        oidc_audience=AUDIENCE,
        oidc_require_at_jwt=True,
    )


@pytest.fixture(scope="session")
def identity_env(identity_provider: DevIdentityProvider) -> dict[str, str]:
    """The environment a server process needs to trust the test provider."""
    return {"OIDC_ISSUER": identity_provider.issuer, "OIDC_AUDIENCE": AUDIENCE}


@pytest.fixture(scope="session")
def settings(database: DatabaseInfo) -> Settings:
    """Settings for the in-process app; nothing is read from .env or the environment's DB."""
    return Settings(_env_file=None, database_url=database.url, env="dev", db_pool_size=5)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
async def app(settings: Settings, identity_settings: IdentitySettings) -> AsyncIterator[FastAPI]:
    """The application with its lifespan running (pool open)."""
    application = create_app(settings, identity_settings)
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
def server(
    start_process: Callable[..., ServerProcess],
    database: DatabaseInfo,
    identity_env: dict[str, str],
) -> ServerProcess:
    """The production server (gunicorn, two workers) on the test database, every worker up."""
    process = start_process({"DATABASE_URL": database.url, **identity_env})
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
