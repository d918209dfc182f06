"""Name the real cause of a database failure, for logs, readiness, `migrate` and 503 answers.

psycopg reports a failed connection as one `OperationalError` with libpq's message and no
SQLSTATE, so connection failures are told apart by that message; errors the server raised on a
statement carry their SQLSTATE. The names are fixed phrases: never the message itself, which
may hold a user name, a host or data.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# libpq and server messages of connection failures (lower case), by the cause they show.
_CONNECT_MESSAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "authentication failed",
        ("authentication failed", "no password supplied", "password authentication"),
    ),
    ("no such database", ("database", "does not exist")),
    ("no such role", ("role", "does not exist")),
    ("too many connections", ("too many connections", "too many clients", "connection slots")),
    # pg_hba rejects plain connections ("no encryption"); Neon asks for sslmode=require.
    ("TLS required", ("no encryption", "sslmode=require", "ssl is required", "ssl required")),
    ("TLS not offered by the server", ("does not support ssl",)),
    ("connection refused", ("connection refused",)),
    ("timed out", ("timeout expired", "timed out")),
    ("host not found", ("failed to resolve host", "could not translate host name")),
    ("connection lost", ("server closed the connection", "terminating connection", "is closed")),
)
# Causes that match only when every listed fragment is present (the others: any of them).
_ALL_FRAGMENTS = frozenset({"no such database", "no such role"})
# SQLSTATEs the server sends on a statement.
_SQLSTATES = {
    "57014": "statement timeout",  # query_canceled: statement_timeout (or a cancel request)
    "55P03": "lock timeout",  # lock_not_available
    "53300": "too many connections",
    "57P01": "connection lost",  # admin_shutdown: the server is shutting down
    "57P02": "connection lost",  # crash_shutdown
    "57P03": "connection refused",  # cannot_connect_now: the server is starting up
    "28P01": "authentication failed",
    "28000": "authentication failed",
    "3D000": "no such database",
    "40P01": "deadlock",
}
# The database works but cannot take this request now: a retry soon would queue again.
BUSY_CAUSES = frozenset(
    {"statement timeout", "lock timeout", "too many connections", "pool exhausted", "deadlock"}
)


@dataclass(frozen=True)
class DatabaseCause:
    """Why a database call failed: a fixed phrase, and whether the database is only busy."""

    phrase: str

    @property
    def busy(self) -> bool:
        """True when the database answers but is at a limit; False when it is unreachable."""
        return self.phrase in BUSY_CAUSES


def _driver_error(error: BaseException) -> BaseException:
    return getattr(error, "orig", None) or error


def database_cause(error: BaseException) -> DatabaseCause:
    """Return the cause of `error`, a SQLAlchemy, psycopg or timeout error.

    Unknown errors are named by their driver class (such as `DataError`), never by message.
    """
    if isinstance(error, PoolTimeoutError):
        return DatabaseCause("pool exhausted")
    driver = _driver_error(error)
    if isinstance(driver, TimeoutError):
        return DatabaseCause("timed out")
    sqlstate = getattr(driver, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate in _SQLSTATES:
        return DatabaseCause(_SQLSTATES[sqlstate])
    message = str(driver).lower()
    for phrase, fragments in _CONNECT_MESSAGES:
        found = (all if phrase in _ALL_FRAGMENTS else any)(part in message for part in fragments)
        if found:
            return DatabaseCause(phrase)
    return DatabaseCause(type(driver).__name__)
