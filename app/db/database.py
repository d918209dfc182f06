"""The process's database: one async engine (one pool), explicit transactions, readiness."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.db.pool_metrics import instrument_pool, track_connection_wait

# The transaction-scoped setting the tasks row-level security policy reads.
ACTING_USER_SETTING = "app.current_user_id"


def connect_args(settings: Settings) -> dict[str, Any]:
    """Psycopg connection arguments: bounded connect time and statement time.

    Behind PgBouncer in transaction mode (Neon's pooled endpoint), server-side prepared
    statements and startup options do not survive; set the statement timeout on the role there.
    """
    args: dict[str, Any] = {
        "connect_timeout": settings.db_connect_timeout,
        "application_name": settings.app_name,
    }
    if settings.db_pgbouncer:
        args["prepare_threshold"] = None
    else:
        args["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    return args


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the async engine and its connection pool, sized by settings."""
    engine = create_async_engine(
        settings.sqlalchemy_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_args=connect_args(settings),
    )
    instrument_pool(engine, capacity=settings.db_pool_size + settings.db_max_overflow)
    return engine


class Database:
    """Owns the engine; hands out sessions inside explicit transactions."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, autoflush=False
        )
        self._health_timeout = settings.db_health_timeout

    @asynccontextmanager
    async def transaction(
        self, acting_user_id: uuid.UUID | None = None
    ) -> AsyncIterator[AsyncSession]:
        """Run a unit of work in one transaction: commit on success, roll back on error.

        Args:
            acting_user_id: The user the row-level security policies act for. Until real
                authentication exists, user-scoped routes pass the user of the URL.

        Yields:
            A session bound to the open transaction.
        """
        async with self._sessions() as session, session.begin():
            with track_connection_wait():
                await session.connection()
            if acting_user_id is not None:
                await session.exec(
                    text("SELECT set_config(:name, :value, true)"),  # type: ignore[call-overload]
                    params={"name": ACTING_USER_SETTING, "value": str(acting_user_id)},
                )
            yield session

    async def schema_revision(self) -> str | None:
        """Return the applied Alembic revision, bounded by the health timeout.

        Raises:
            TimeoutError: The database did not answer in time.
            sqlalchemy.exc.SQLAlchemyError: The database is unreachable.
        """
        async with asyncio.timeout(self._health_timeout), self.engine.connect() as connection:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return result.scalar_one_or_none()

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
