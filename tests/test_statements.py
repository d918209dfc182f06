"""Statements sent together (`Connection.fetch_each`): one round trip, one transaction."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError

from app.db.connection import Connection, Statement

SET_MARK = Statement.of(text("SELECT set_config('test.mark', :mark, true) AS mark"))
READ_MARK = Statement.of(text("SELECT current_setting('test.mark', true) AS mark"))
FAIL = Statement.of(text("SELECT 1 / 0 AS never"))


@pytest.fixture
async def connection(database):
    async with await psycopg.AsyncConnection.connect(database.url, autocommit=True) as driver:
        yield Connection(driver)


async def test_statements_sent_together_share_one_transaction(connection):
    results = await connection.fetch_each(SET_MARK.then(READ_MARK), {"mark": "set"})
    # The transaction-local setting is gone once the statements' transaction ends.
    afterwards = await connection.fetch_one(READ_MARK)

    assert results == [[{"mark": "set"}], [{"mark": "set"}]]
    assert afterwards == {"mark": ""}


async def test_when_one_fails_none_takes_effect(connection):
    persistent = Statement.of(text("SELECT set_config('test.mark', :mark, false) AS mark"))

    with pytest.raises(DataError) as failed:
        await connection.fetch_each(persistent.then(FAIL), {"mark": "kept?"})

    # Even a session-level setting is undone with the failed transaction.
    assert await connection.fetch_one(READ_MARK) == {"mark": ""}
    assert "kept?" not in str(failed.value)


def test_statements_that_share_a_parameter_are_not_joined():
    with pytest.raises(ValueError, match="share bind parameters"):
        SET_MARK.then(SET_MARK)
