"""The statement every caller's statement runs behind: act as the caller."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Uuid, func, text

from app.core.ids import uuid7
from app.db.connection import Statement
from app.identity.tokens import Principal

# Sets the identity the row-level security policies read (transaction-local), finds or
# provisions the caller's row and returns it; refuses a deactivated caller with
# DEACTIVATED_SQLSTATE (migration 0004), which aborts every statement sent after it.
ACT_AS_CALLER = Statement.of(
    text(
        "SELECT * FROM act_as_caller(:caller_issuer, :caller_subject, :caller_email,"
        " :caller_name, :caller_is_admin, :caller_new_id)"
    )
)
DEACTIVATED_SQLSTATE = "GW403"

# The acting user's id as SQL, the very call the tasks policy makes (migration 0005), so that
# PostgreSQL merges the two into one index condition: NULL (matching no row) until
# `act_as_caller` set it in the same transaction.
ACTING_USER_ID = func.acting_user_id(type_=Uuid)


def caller_values(principal: Principal) -> dict[str, Any]:
    """The values `ACT_AS_CALLER` binds for `principal`."""
    return {
        "caller_issuer": principal.issuer,
        "caller_subject": principal.subject,
        "caller_email": principal.email,
        "caller_name": principal.name,
        "caller_is_admin": principal.is_admin,
        "caller_new_id": uuid7(),
    }
