"""The one statement that starts every API transaction: act as the caller."""

from __future__ import annotations

from sqlalchemy import text

from app.core.ids import uuid7
from app.db.connection import Connection, Record, Statement
from app.identity.tokens import Principal

# Sets the identity the row-level security policies read (transaction-local), finds or
# provisions the caller's row and returns it: resolving the caller costs no round trip of its own.
_ACT_AS_CALLER = Statement.of(
    text("SELECT * FROM act_as_caller(:issuer, :subject, :email, :name, :is_admin, :new_id)")
)


async def act_as_caller(connection: Connection, principal: Principal) -> Record:
    """Make `principal` the acting user of the connection's transaction; return their row.

    Args:
        connection: A connection inside an open transaction.
        principal: The verified caller.
    """
    user = await connection.fetch_one(
        _ACT_AS_CALLER,
        {
            "issuer": principal.issuer,
            "subject": principal.subject,
            "email": principal.email,
            "name": principal.name,
            "is_admin": principal.is_admin,
            "new_id": uuid7(),
        },
    )
    if user is None:  # the function always returns the caller's row
        raise RuntimeError("act_as_caller returned no row")
    return user
