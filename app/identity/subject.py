"""The authenticated caller in the database: every statement acts as them.

Each statement goes to the server behind `act_as_caller()` as one simple query: one round trip
and one implicit transaction, so the acting user that row-level security reads is set for that
statement alone and is never left on the pooled connection. A use case that needs several
statements to be atomic together would run them in one explicit transaction behind the same
function; none does today (each is one statement, plus a read on a failure path).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg
from sqlalchemy.exc import DBAPIError

from app.db.connection import Connection, Record, Statement
from app.db.database import Database
from app.identity.errors import AccountDeactivatedError
from app.identity.repository import ACT_AS_CALLER, DEACTIVATED_SQLSTATE, caller_values
from app.identity.tokens import Principal


@dataclass(frozen=True, slots=True)
class AuthSubject:
    """A verified caller resolved to their user row.

    Attributes:
        principal: What the access token says (identity, permissions).
        user: The caller's row in `users`, provisioned on their first request.
    """

    principal: Principal
    user: Record


class CallerConnection(Connection):
    """A connection whose every statement runs as one caller, behind `act_as_caller`.

    Raises (from every statement):
        AccountDeactivatedError: An admin deactivated the caller's account (403); the
            statement did not run.
    """

    __slots__ = ("_caller",)
    # Each statement joined behind ACT_AS_CALLER once, by its SQL.
    _behind_caller: ClassVar[dict[bytes, Statement]] = {}

    def __init__(self, driver: psycopg.AsyncConnection[Any], principal: Principal) -> None:
        super().__init__(driver)
        self._caller = caller_values(principal)

    async def caller(self) -> Record:
        """Find or provision the caller's row and return it (one statement of its own)."""
        with _refusing_deactivated():
            [user] = await super().fetch_all(ACT_AS_CALLER, self._caller)
        return user

    async def fetch_all(
        self, statement: Statement, values: Mapping[str, Any] | None = None
    ) -> list[Record]:
        """Run `statement` as the caller and return its rows (see `Connection.fetch_all`)."""
        joined = self._behind_caller.get(statement.sql)
        if joined is None:
            joined = self._behind_caller[statement.sql] = ACT_AS_CALLER.then(statement)
        with _refusing_deactivated():
            _, rows = await self.fetch_each(joined, {**self._caller, **(values or {})})
        return rows


@contextmanager
def _refusing_deactivated() -> Generator[None, None, None]:
    try:
        yield
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == DEACTIVATED_SQLSTATE:
            raise AccountDeactivatedError() from error
        raise


@asynccontextmanager
async def acting_as(
    database: Database, principal: Principal
) -> AsyncGenerator[CallerConnection, None]:
    """Lend a connection whose every statement acts as `principal` under row-level security.

    Yields:
        The connection; each statement on it commits on its own.
    """
    async with database.single_statement() as connection:
        yield CallerConnection(connection.driver, principal)


async def resolve(database: Database, principal: Principal) -> AuthSubject:
    """Find or provision `principal`'s user.

    Raises:
        AccountDeactivatedError: An admin deactivated the caller's account (403).
    """
    async with acting_as(database, principal) as connection:
        return AuthSubject(principal, await connection.caller())
