"""The pool lends connections in the order requests asked for them, against a real server.

Under load, a request that arrives as a connection is returned must not take it from one that
was already waiting: that is what made a few requests wait many times over (the p99).
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.core.config import Settings
from app.db.database import Database


@pytest.fixture
async def one_connection(database):
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database.url, db_pool_size=1, db_pool_timeout=0.5
    )
    pool = Database(settings)
    yield pool
    await pool.dispose()


async def test_connections_go_to_the_waiters_in_arrival_order(one_connection):
    served: list[str] = []
    returned = asyncio.Event()

    async def borrow(name: str) -> None:
        async with one_connection.single_statement():
            served.append(name)
            await asyncio.sleep(0.01)

    async def hold_then_let_a_newcomer_in() -> None:
        async with one_connection.single_statement():
            await returned.wait()
        # Asks as the connection comes back, before the first waiter has run.
        await borrow("newcomer")

    holder = asyncio.create_task(hold_then_let_a_newcomer_in())
    await asyncio.sleep(0.05)
    waiters = [asyncio.create_task(borrow(f"waiter {number}")) for number in range(3)]
    await asyncio.sleep(0.05)
    returned.set()
    await asyncio.gather(holder, *waiters)

    assert served == ["waiter 0", "waiter 1", "waiter 2", "newcomer"]


async def test_the_wait_is_bounded_by_the_pool_timeout(one_connection):
    async with one_connection.single_statement():
        with pytest.raises(
            PoolTimeoutError, match=r"no connection of the 1 came free within 0\.5 s"
        ):
            async with one_connection.single_statement():
                pass
