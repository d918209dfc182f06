"""Migrations for deployments: wait for the database, take the lock, upgrade to head.

Alembic has no lock of its own, so two runners (a Helm hook retry and a developer, or two
replicas of a job) would race and fail with DuplicateTable. A session-level advisory lock on a
dedicated connection serialises them; the second runner then finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from alembic import command
from app.core.config import Settings
from app.core.errors import database_error_name
from app.core.logging import get_logger

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATION_URL_ATTRIBUTE = "groundwork.database_url"
MIGRATION_LOCK_TIMEOUT_ATTRIBUTE = "groundwork.lock_timeout"
RUNTIME_ROLE_ATTRIBUTE = "groundwork.runtime_role"
# pg_advisory_lock key: the first 8 bytes of sha1("groundwork.migrations").
MIGRATION_LOCK_KEY = 0x3F1C2A9B5D7E4601
DEFAULT_LOCK_TIMEOUT_SECONDS = 120.0

logger = get_logger("groundwork.migrations")


class MigrationError(Exception):
    """Migrations could not run; the message is one line for the deployment log."""


def alembic_config(
    url: URL,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    script_location: Path | None = None,
    runtime_role: str | None = None,
) -> Config:
    """Build the Alembic configuration for `url` without going through configparser.

    Args:
        url: Where to migrate, as the owner role.
        lock_timeout: Most seconds to wait for another runner's migration lock.
        script_location: Another migrations folder than the project's `alembic/`.
        runtime_role: The role the server connects as, granted its privileges after the run.
    """
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    if script_location is not None:
        config.set_main_option("script_location", str(script_location))
    config.attributes[MIGRATION_URL_ATTRIBUTE] = url
    config.attributes[MIGRATION_LOCK_TIMEOUT_ATTRIBUTE] = lock_timeout
    config.attributes[RUNTIME_ROLE_ATTRIBUTE] = runtime_role
    return config


def runtime_role(settings: Settings) -> str | None:
    """Return the server's role when it differs from the owner that migrates, else None."""
    runtime = settings.sqlalchemy_url().username
    owner = settings.sqlalchemy_url(for_migrations=True).username
    return runtime if runtime and runtime != owner else None


def head_revisions(script_location: Path | None = None) -> tuple[str, ...]:
    """Return the heads of the migration history; more than one means a merge is needed."""
    config = alembic_config(URL.create("postgresql+psycopg"), script_location=script_location)
    return tuple(ScriptDirectory.from_config(config).get_heads())


@asynccontextmanager
async def advisory_lock(
    engine: AsyncEngine, wait_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS
) -> AsyncGenerator[None, None]:
    """Hold the migration advisory lock on a dedicated connection for the block.

    Raises:
        MigrationError: Another runner held the lock for longer than `wait_seconds`.
    """
    async with engine.connect() as connection:
        await connection.execute(text(f"SET lock_timeout = '{int(wait_seconds * 1000)}ms'"))
        try:
            await connection.execute(
                text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        except OperationalError as error:
            cause = database_error_name(error)
            if cause != "lock timeout":
                raise MigrationError(f"could not take the migration lock: {cause}") from error
            raise MigrationError(
                f"another migration held the lock for more than {wait_seconds:g} s"
            ) from error
        await connection.commit()
        logger.info("migration_lock_acquired")
        try:
            yield
        finally:
            await connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            await connection.commit()


async def wait_for_database(url: URL, wait_seconds: float) -> None:
    """Retry connecting until the database accepts the connection or `wait_seconds` pass.

    Every attempt and the final error name the cause (`app.core.database_causes`): a database that
    answers "password authentication failed" is not one that did not answer.

    Raises:
        MigrationError: No connection within `wait_seconds`; the message names the last cause.
    """
    deadline = time.monotonic() + wait_seconds
    delay = 0.5
    engine = create_async_engine(url, connect_args={"connect_timeout": 5})
    try:
        while True:
            try:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                return
            except SQLAlchemyError as error:
                reason = database_error_name(error)
                if time.monotonic() + delay > deadline:
                    raise MigrationError(
                        f"could not connect to the database within {wait_seconds:g} s: {reason}"
                    ) from error
                logger.info("waiting_for_database", reason=reason, retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
    finally:
        await engine.dispose()


def upgrade_to_head(settings: Settings, script_location: Path | None = None) -> None:
    """Wait for the database, then upgrade it to the newest revision under the lock.

    Args:
        settings: Where to migrate, and how long to wait for the database and the lock.
        script_location: Another migrations folder than the project's `alembic/`.

    Raises:
        MigrationError: The database is unreachable, the lock is held too long, the history
            has several heads, or a migration failed.
    """
    heads = head_revisions(script_location)
    if len(heads) != 1:
        raise MigrationError(f"the migration history has {len(heads)} heads {heads}; merge them")
    url = settings.sqlalchemy_url(for_migrations=True)
    asyncio.run(wait_for_database(url, settings.migration_wait_timeout))
    role = runtime_role(settings)
    if role is None:
        logger.warning(
            "migrating_as_the_runtime_role",
            hint="set MIGRATION_DATABASE_URL to the owner role and DATABASE_URL to a role that "
            "owns nothing, so the server cannot switch row-level security off",
        )
    logger.info("migrations_started", target=heads[0], runtime_role=role)
    try:
        config = alembic_config(url, settings.migration_lock_timeout, script_location, role)
        command.upgrade(config, "head")
    except MigrationError:
        raise
    except Exception as error:
        raise MigrationError(f"migration failed: {type(error).__name__}: {error}") from error
    logger.info("migrations_finished", revision=heads[0])
