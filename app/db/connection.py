"""Statements compiled once, run straight on a pooled psycopg connection.

Repositories write SQLAlchemy Core over the SQLModel tables, the tables Alembic migrates.
`Statement.of` compiles one such statement, whose values are named bind parameters, into SQL
text for psycopg once per shape; `Connection` runs that text on the driver connection with rows
as dicts. That skips what SQLAlchemy's execution adds to every statement (its cache key, the
greenlet bridge, result processing), which was more than half of a read's CPU (README,
"Performance"). Statements joined with `Statement.then` go as one simple query: one round
trip and one implicit transaction. Failures still surface as SQLAlchemy's `DBAPIError` family,
bound values hidden, so error handling is the same whichever layer raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

# Compilation needs no server: the psycopg dialect renders the same SQL for every connection.
DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]
# Anything SQLAlchemy would expand or render at execution time cannot be compiled once.
_RENDERED_AT_EXECUTION = "__[POSTCOMPILE_"

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL text for psycopg, with the values of any bind parameters given at build time.

    Attributes:
        sql: The compiled statement, `%(name)s` placeholders for its bind parameters.
        defaults: Values of bind parameters the statement carries itself (literals).
        names: Every bind parameter's name.
    """

    sql: bytes
    defaults: Mapping[str, Any]
    names: frozenset[str]

    @classmethod
    def of(cls, statement: ClauseElement) -> Statement:
        """Compile a Core statement once.

        Raises:
            ValueError: The statement needs rendering at execution time (an expanding IN).
        """
        compiled = statement.compile(dialect=DIALECT)
        text = str(compiled)
        if _RENDERED_AT_EXECUTION in text:
            raise ValueError(f"cannot compile once, parameters expand at execution: {text}")
        defaults = {name: value for name, value in compiled.params.items() if value is not None}
        return cls(text.encode(), defaults, frozenset(compiled.params))

    def then(self, following: Statement) -> Statement:
        """This statement followed by `following`, for `Connection.fetch_each`.

        Raises:
            ValueError: Both name a bind parameter alike (one value would serve both).
        """
        if shared := self.names & following.names:
            raise ValueError(f"the statements share bind parameters: {sorted(shared)}")
        return Statement(
            self.sql + b"; " + following.sql,
            {**self.defaults, **following.defaults},
            self.names | following.names,
        )

    def parameters(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        """The statement's own values overlaid with `values`."""
        return {**self.defaults, **values} if self.defaults else values


class Connection:
    """A pooled connection lent for one unit of work: compiled statements in, dict rows out."""

    __slots__ = ("driver",)

    def __init__(self, driver: psycopg.AsyncConnection[Any]) -> None:
        self.driver = driver

    async def fetch_all(
        self, statement: Statement, values: Mapping[str, Any] | None = None
    ) -> list[Record]:
        """Run `statement` (a query, or a change with RETURNING) and return its rows.

        Raises:
            sqlalchemy.exc.DBAPIError: The database refused or failed it (the subclass names how).
        """
        [rows] = await self._results(self.driver.cursor(row_factory=dict_row), statement, values)
        return rows

    async def fetch_one(
        self, statement: Statement, values: Mapping[str, Any] | None = None
    ) -> Record | None:
        """Run `statement` and return its first row, or None when it returns none."""
        rows = await self.fetch_all(statement, values)
        return rows[0] if rows else None

    async def fetch_each(
        self, statements: Statement, values: Mapping[str, Any] | None = None
    ) -> list[list[Record]]:
        """Run statements joined with `Statement.then` as one simple query; return each one's rows.

        One round trip and one implicit transaction: if one statement fails, none takes effect
        and none after it runs. The simple query protocol carries no separate values, so
        psycopg binds them client-side (quoted as literals, never interpolated as text) and the
        server plans the statements each time instead of reusing prepared ones.

        Raises:
            sqlalchemy.exc.DBAPIError: The database refused or failed one of them.
        """
        cursor = psycopg.AsyncClientCursor(self.driver, row_factory=dict_row)
        return await self._results(cursor, statements, values)

    @staticmethod
    async def _results(
        cursor: psycopg.AsyncCursor[Record],
        statement: Statement,
        values: Mapping[str, Any] | None,
    ) -> list[list[Record]]:
        try:
            await cursor.execute(statement.sql, statement.parameters(values or {}))
            results = [await cursor.fetchall()]
            while cursor.nextset():
                results.append(await cursor.fetchall())
            return results
        except psycopg.Error as error:
            raise as_dbapi_error(error, statement.sql.decode()) from error
        finally:
            await cursor.close()


def as_dbapi_error(error: psycopg.Error, sql: str | None = None) -> DBAPIError:
    """Wrap a psycopg error in the `DBAPIError` subclass SQLAlchemy would raise for it.

    Args:
        error: What psycopg raised.
        sql: The statement that failed, if any; its bound values are never included.
    """
    # Typed as any exception, but a DB-API error always comes back as a DBAPIError subclass.
    wrapped = DBAPIError.instance(
        sql,
        None,
        error,
        psycopg.Error,
        hide_parameters=True,
        dialect=DIALECT,
        ismulti=False,
    )
    return cast(DBAPIError, wrapped)
