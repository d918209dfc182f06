"""The process's database: one connection pool, statements that commit on their own, readiness.

SQLAlchemy's engine makes and keeps the pool (sizes, timeouts, recycling, pings, the pool
metrics' events) and connects on demand, so a failed connection names its cause in the request
that needed it. Statements skip the engine: `app.db.connection.Connection` runs them on the
pooled psycopg connection, which stays in autocommit mode: a statement, or statements sent
together as one simple query, is its own transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, cast

import psycopg
from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import Pool
from sqlalchemy.util import greenlet_spawn

from app.core.config import Settings
from app.db.connection import Connection, Statement, as_dbapi_error
from app.db.pool_metrics import instrument_pool, track_connection_wait

# A pooled connection idle this long is tested before reuse (when pre-ping is off).
IDLE_PING_AFTER_SECONDS = 0.25


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


def create_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    """Create an async engine and its connection pool, sized by settings.

    Args:
        settings: Where to connect, pool size and timeouts.
        pool_size: A fixed size instead of the settings' (for the readiness connection).
    """
    engine = create_async_engine(
        settings.sqlalchemy_url(),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=0 if pool_size else settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_args=connect_args(settings),
        # Bound values are user data: error messages (and so the 500's log) show the SQL only.
        hide_parameters=True,
    )
    event.listen(engine.sync_engine, "connect", _autocommit)
    if not settings.db_pool_pre_ping:
        ping_idle_connections(engine, IDLE_PING_AFTER_SECONDS)
    return engine


def _autocommit(dbapi_connection: Any, _: Any) -> None:
    # Statements commit on their own, with no BEGIN first.
    dbapi_connection.autocommit = True


def ping_idle_connections(engine: AsyncEngine, idle_seconds: float) -> None:
    """Test a pooled connection before reuse only when it sat idle for `idle_seconds`.

    Busy connections skip the round trip a pre-ping costs on every checkout, while one that
    idled through a database restart (say, in a worker no request reached meanwhile) is
    replaced with a fresh connection instead of failing the next request.

    Args:
        engine: The engine whose pool is guarded.
        idle_seconds: How long a connection may idle before it is tested.
    """
    dialect = engine.dialect

    def remember_checkin(_: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: Any, _: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            # The pool discards the connection and checks out a new one.
            raise DisconnectionError("idle connection failed its ping") from error

    event.listen(engine.sync_engine, "checkin", remember_checkin)
    event.listen(engine.sync_engine, "checkout", ping_if_idle)


@asynccontextmanager
async def _lent(pool: Pool) -> AsyncGenerator[Connection, None]:
    """Check a connection out of `pool` for the block; a broken one is discarded after it."""
    try:
        pooled = await greenlet_spawn(pool.connect)
    except psycopg.Error as error:
        raise as_dbapi_error(error) from error
    driver = cast(psycopg.AsyncConnection[Any], pooled.driver_connection)  # set while lent
    try:
        yield Connection(driver)
    except BaseException:
        if driver.broken or driver.closed:
            pooled.invalidate()
        raise
    finally:
        await greenlet_spawn(pooled.close)


class _Lender:
    """Lends the pool's connections in the order requests asked for them.

    SQLAlchemy's queue lets a newcomer take a connection that was just handed to a waiter, and
    the waiter queues again at the back, so under load one request can wait many times over.
    Requests first take a turn here (a FIFO semaphore as large as the pool), so a turn always
    finds a connection free or room to open one, and the wait for a turn is bounded by the
    pool timeout.
    """

    def __init__(self, engine: AsyncEngine, capacity: int, timeout: float) -> None:
        self._pool: Pool = engine.sync_engine.pool
        self._turns = asyncio.Semaphore(capacity)
        self._timeout = timeout
        self._capacity = capacity

    @asynccontextmanager
    async def lend(self) -> AsyncGenerator[Connection, None]:
        """Check a connection out for the block; a broken one is discarded after it.

        Raises:
            sqlalchemy.exc.TimeoutError: No connection came free within the pool timeout.
        """
        with track_connection_wait():
            await self._take_turn()
        try:
            async with _lent(self._pool) as connection:
                yield connection
        finally:
            self._turns.release()

    async def _take_turn(self) -> None:
        if not self._turns.locked():
            await self._turns.acquire()  # free now: no timer needed
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._turns.acquire()
        except TimeoutError:
            raise PoolTimeoutError(
                f"no connection of the {self._capacity} came free within {self._timeout:g} s"
            ) from None


_SCHEMA_REVISION = Statement.of(text("SELECT version_num FROM alembic_version"))


class Database:
    """Owns the engine; lends connections whose statements commit on their own."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        capacity = settings.db_pool_size + settings.db_max_overflow
        instrument_pool(self.engine, capacity=capacity)
        self._connections = _Lender(self.engine, capacity, settings.db_pool_timeout)
        # Readiness has a connection of its own: a pool busy with traffic must not make the
        # pod look unready, while a database that does not answer still does.
        self._health_engine = create_engine(settings, pool_size=1)
        self._health_connection = _Lender(self._health_engine, 1, settings.db_pool_timeout)
        self._health_timeout = settings.db_health_timeout
        self._health_check: asyncio.Future[str | None] | None = None

    @asynccontextmanager
    async def single_statement(self) -> AsyncGenerator[Connection, None]:
        """Lend a connection for statements that each commit on their own (no transaction).

        Skipping BEGIN and COMMIT saves two round trips; transaction-local settings last for
        one statement (or for the statements `Connection.fetch_each` sends together). Row-level
        security sees no acting user until a statement sets one (`app.identity.subject`).

        Yields:
            A connection in autocommit mode.
        """
        async with self._connections.lend() as connection:
            yield connection

    async def schema_revision(self) -> str | None:
        """Return the applied Alembic revision, bounded by the health timeout.

        Probes that arrive while a check runs share its answer instead of queueing.

        Raises:
            TimeoutError: The database did not answer in time.
            sqlalchemy.exc.SQLAlchemyError: The database is unreachable.
        """
        if self._health_check is None or self._health_check.done():
            self._health_check = asyncio.ensure_future(self._read_schema_revision())
        return await asyncio.shield(self._health_check)

    async def _read_schema_revision(self) -> str | None:
        async with (
            asyncio.timeout(self._health_timeout),
            self._health_connection.lend() as connection,
        ):
            row = await connection.fetch_one(_SCHEMA_REVISION)
            return None if row is None else str(row["version_num"])

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        await self._health_engine.dispose()
