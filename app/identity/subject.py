"""The authenticated caller inside a transaction: who they are in the database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.db.connection import Connection, Record
from app.db.database import Database
from app.identity.errors import AccountDeactivatedError
from app.identity.repository import act_as_caller
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

    @property
    def user_id(self) -> uuid.UUID:
        """The caller's user id, the acting user of row-level security."""
        user_id: uuid.UUID = self.user["id"]
        return user_id


def _subject(principal: Principal, user: Record) -> AuthSubject:
    if not user["is_active"]:
        raise AccountDeactivatedError()
    return AuthSubject(principal, user)


async def resolve(database: Database, principal: Principal) -> AuthSubject:
    """Find or provision `principal`'s user in one statement of its own (no transaction).

    Raises:
        AccountDeactivatedError: An admin deactivated the caller's account (403).
    """
    async with database.single_statement() as connection:
        return _subject(principal, await act_as_caller(connection, principal))


@asynccontextmanager
async def acting_as(
    database: Database, principal: Principal
) -> AsyncGenerator[tuple[Connection, AuthSubject], None]:
    """Open a transaction whose every statement acts as `principal` under row-level security.

    Commit on success, roll back on error, like `Database.transaction()`.

    Yields:
        The connection and the caller's `AuthSubject`.

    Raises:
        AccountDeactivatedError: An admin deactivated the caller's account (403).
    """
    async with database.transaction() as connection:
        yield connection, _subject(principal, await act_as_caller(connection, principal))
