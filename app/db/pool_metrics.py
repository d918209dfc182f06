"""Connection pool gauges that stay correct across gunicorn workers (live sums).

They belong to no registry here; `app.core.metrics` registers them with each app's registry.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

POOL_OPEN = Gauge(
    "db_pool_connections_open",
    "Database connections currently open in the pool.",
    multiprocess_mode="livesum",
    registry=None,
)
POOL_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "Database connections currently checked out by requests.",
    multiprocess_mode="livesum",
    registry=None,
)
POOL_WAITING = Gauge(
    "db_pool_requests_waiting",
    "Requests waiting for a free database connection.",
    multiprocess_mode="livesum",
    registry=None,
)
POOL_GAUGES = (POOL_OPEN, POOL_IN_USE, POOL_WAITING)
POOL_CAPACITY = Gauge(
    "db_pool_capacity",
    "Most connections the pool may open (pool size plus overflow).",
    multiprocess_mode="livesum",
    registry=None,
)


def instrument_pool(engine: AsyncEngine, capacity: int) -> None:
    """Keep the pool gauges in step with the engine's pool events.

    Args:
        engine: The engine whose pool is observed.
        capacity: Most connections the pool may open.
    """
    pool = engine.sync_engine.pool
    POOL_CAPACITY.set(capacity)

    def on_connect(*_: Any) -> None:
        POOL_OPEN.inc()

    def on_close(*_: Any) -> None:
        POOL_OPEN.dec()

    def on_checkout(*_: Any) -> None:
        POOL_IN_USE.inc()

    def on_checkin(*_: Any) -> None:
        POOL_IN_USE.dec()

    event.listen(pool, "connect", on_connect)
    event.listen(pool, "close", on_close)
    event.listen(pool, "detach", on_close)
    event.listen(pool, "checkout", on_checkout)
    event.listen(pool, "checkin", on_checkin)


@contextmanager
def track_connection_wait() -> Generator[None, None, None]:
    """Count the caller as waiting for a connection while the block runs."""
    with POOL_WAITING.track_inprogress():
        yield
