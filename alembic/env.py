"""Alembic environment: async engine, the app's settings and metadata, one runner at a time."""

import asyncio

from sqlalchemy import Connection, pool
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import context
from app.core.config import get_settings
from app.core.logging import configure_logging
from app.db.migrations import (
    MIGRATION_LOCK_TIMEOUT_ATTRIBUTE,
    MIGRATION_URL_ATTRIBUTE,
    RUNTIME_ROLE_ATTRIBUTE,
    advisory_lock,
    runtime_role,
)
from app.db.roles import grant_runtime_privileges
from app.modules.registry import target_metadata

config = context.config


def _from_settings() -> None:
    """Fill in what `app.db.migrations` passes when Alembic runs from its own command line."""
    if MIGRATION_URL_ATTRIBUTE in config.attributes:
        return
    settings = get_settings()
    configure_logging(settings.log_level, settings.resolved_log_format, settings.secret_values())
    config.attributes[MIGRATION_URL_ATTRIBUTE] = settings.sqlalchemy_url(for_migrations=True)
    config.attributes[MIGRATION_LOCK_TIMEOUT_ATTRIBUTE] = settings.migration_lock_timeout
    config.attributes[RUNTIME_ROLE_ATTRIBUTE] = runtime_role(settings)


def _url() -> URL:
    url: URL = config.attributes[MIGRATION_URL_ATTRIBUTE]
    return url


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (`alembic upgrade head --sql`)."""
    context.configure(
        url=_url().render_as_string(hide_password=True),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
        if role := config.attributes.get(RUNTIME_ROLE_ATTRIBUTE):
            grant_runtime_privileges(connection, role)


async def run_migrations_online() -> None:
    """Run migrations on a dedicated connection while holding the migration advisory lock."""
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        lock_timeout = config.attributes[MIGRATION_LOCK_TIMEOUT_ATTRIBUTE]
        async with advisory_lock(engine, lock_timeout), engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


_from_settings()
if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
