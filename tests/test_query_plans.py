"""The tasks policy is an index condition for a big user's pages, not a filter on every row.

A user who owns a tenth of the table, their rows spread through it (as the ids of many users'
tasks interleave over time): with the policy read inline, PostgreSQL walked the primary key
and tested ten rows for each row of the page. Through `acting_user_id()` (migration 0005) it
reads the page from the `(user_id, id)` index and tests nothing row by row.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import select

from app.db.connection import Statement
from app.identity.repository import ACTING_USER_ID
from app.modules.task.repository import TaskRepository
from tests.conftest import DatabaseInfo, create_database, migrate

TASKS = 200_000
USERS = 10
PAGE = 51  # a page of 50 and the row that tells whether another follows
BIG_USER = uuid.UUID(int=1)


@pytest.fixture(scope="module")
def crowded_database(admin_url: str) -> Iterator[DatabaseInfo]:
    """A database of its own whose tasks are spread evenly over ten users, ids in insert order."""
    name = f"groundwork_plans_{os.getpid()}"
    info = create_database(admin_url, name)
    migrate(info)
    with psycopg.connect(info.admin_url, autocommit=True) as connection:  # bypasses the policies
        connection.execute(
            "INSERT INTO users (id, version, created_at, updated_at, issuer, subject, is_active)"
            " SELECT lpad(to_hex(n), 32, '0')::uuid, 1, now(), now(), 'https://plans.test',"
            " 'user-' || n, true FROM generate_series(1, %s) AS n",
            [USERS],
        )
        connection.execute(
            "INSERT INTO tasks (id, version, created_at, updated_at, user_id, title, status)"
            " SELECT lpad(to_hex(n), 32, '0')::uuid, 1, now(), now(),"
            " lpad(to_hex(n %% %s + 1), 32, '0')::uuid, 'task ' || n, 'todo'"
            " FROM generate_series(1, %s) AS n",
            [USERS, TASKS],
        )
        connection.execute("ANALYZE users, tasks")
    yield info
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan that reads the tasks table."""
    if plan.get("Relation Name") == "tasks":
        yield plan
    for child in plan.get("Plans", []):
        yield from scans(child)


def page_scan(database: DatabaseInfo, query: bytes) -> dict[str, Any]:
    """EXPLAIN ANALYZE `query` as the big user (runtime role); return its one scan of tasks."""
    with psycopg.connect(database.url) as connection:
        connection.execute("SELECT set_config('app.current_user_id', %s, true)", [str(BIG_USER)])
        [(document,)] = connection.execute(b"EXPLAIN (ANALYZE, FORMAT JSON) " + query).fetchall()
    [scan] = list(scans(document[0]["Plan"]))
    return scan


def scoped_page() -> bytes:
    """A page's shape with the scope the task repository adds (`ACTING_USER_ID`), compiled alike."""
    tasks = TaskRepository.table()
    statement = (
        select(tasks).where(tasks.c.user_id == ACTING_USER_ID).order_by(tasks.c.id).limit(PAGE)
    )
    return Statement.of(statement).sql % {b"param_1": str(PAGE).encode()}


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(
            f"SELECT * FROM tasks ORDER BY id LIMIT {PAGE}".encode(), id="the policy alone"
        ),
        pytest.param(scoped_page(), id="the repository's scope and the policy"),
        pytest.param(
            f"SELECT * FROM tasks WHERE id > '{uuid.UUID(int=TASKS * 9 // 10)}'"
            f" ORDER BY id LIMIT {PAGE}".encode(),
            id="a deep page",
        ),
    ],
)
def test_a_big_users_page_reads_only_its_rows(crowded_database, query):
    scan = page_scan(crowded_database, query)

    assert scan["Index Name"] == "ix_tasks_user_id_id"
    assert "acting_user_id()" in scan["Index Cond"]
    assert scan.get("Rows Removed by Filter", 0) == 0
    assert scan["Actual Rows"] == PAGE
