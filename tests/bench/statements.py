"""Database statements per request, counted by pg_stat_statements on the benchmark's server.

The extension is preloaded but tracks nothing during the timed runs (`track = none`, so it
costs them nothing). To count, tracking is switched on with a reload, the counters are reset,
a fixed number of requests goes to one server one at a time, and the calls of the runtime
role's statements are divided by that number. psycopg sends one statement per round trip (no
pipelining), BEGIN and COMMIT included, so statements per request are round trips per request.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Literal

import httpx
import psycopg

from tests.bench.load import Request

EXTENSION = "pg_stat_statements"
RELOAD_SETTLE_SECONDS = 0.5  # every backend re-reads its configuration before its next query
WARMUP_REQUESTS = 20
QUERY_CHARACTERS = 70
OPENING, CLOSING = frozenset({"BEGIN"}), frozenset({"COMMIT", "ROLLBACK"})


@dataclass(frozen=True)
class StatementCount:
    """The statements one server's requests ran: per request in total, and each one."""

    per_request: float
    statements: list[tuple[str, float]]  # (normalised query text, calls per request)


@contextmanager
def tracking(admin_url: str) -> Generator[None, None, None]:
    """Track top-level statements for the block; nothing is tracked before or after it."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION}")
        _set_track(connection, "top")
        try:
            yield
        finally:
            _set_track(connection, "none")


def _set_track(connection: psycopg.Connection[object], value: Literal["top", "none"]) -> None:
    connection.execute(f"ALTER SYSTEM SET {EXTENSION}.track = '{value}'")
    connection.execute("SELECT pg_reload_conf()")
    time.sleep(RELOAD_SETTLE_SECONDS)


def count_statements(
    admin_url: str, role: str, base_url: str, requests: tuple[Request, ...], count: int
) -> StatementCount:
    """Send `count` of `requests` (cycled) one by one; count the statements `role` ran.

    Call inside `tracking()`. Warm-up requests go first, so pooled connections are in use
    (none needs its idle ping) and every statement is prepared, as in steady state.

    Raises:
        RuntimeError: A request failed.
    """
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        _send(client, requests, WARMUP_REQUESTS)
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute("SELECT pg_stat_statements_reset()")
            _send(client, requests, count)
            rows = connection.execute(
                "SELECT query, sum(calls)::bigint FROM pg_stat_statements"
                " WHERE userid = to_regrole(%s) AND dbid ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
                " GROUP BY query",
                [role],
            ).fetchall()
    # In the order a transaction runs them: BEGIN, the statements (by text), COMMIT.
    rows.sort(key=lambda row: (row[0] not in OPENING, row[0] in CLOSING, row[0]))
    statements = [(_shorten(query), calls / count) for query, calls in rows]
    return StatementCount(sum(per for _, per in statements), statements)


def _send(client: httpx.Client, requests: tuple[Request, ...], count: int) -> None:
    for request in islice(cycle(requests), count):
        response = client.request(
            request.method, request.path, json=request.body, headers=request.headers
        )
        if response.status_code >= httpx.codes.BAD_REQUEST:
            raise RuntimeError(
                f"{request.method} {request.path} answered {response.status_code}:"
                f" {response.text[:500]}"
            )


def _shorten(query: str) -> str:
    text = " ".join(query.split())
    return text if len(text) <= QUERY_CHARACTERS else text[: QUERY_CHARACTERS - 3] + "..."
