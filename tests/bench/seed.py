"""The benchmark's database: a throwaway PostgreSQL 18, migrated, then seeded server-side.

Seeding runs as one set of `generate_series` statements inside PostgreSQL (a million rows in
seconds, no round trip per row). It connects as the superuser, which bypasses the tasks
row-level security; the application itself connects as a non-superuser role.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from app.dev.embedded_postgres import EmbeddedPostgres, ensure_app_database, free_port

APP_ROLE = APP_DATABASE = "groundwork_bench"
BIG_USER_SHARE = 10  # every 10th task belongs to the big user: 100,000 of 1,000,000
DEEP_PAGE_FRACTION = 0.9
SAMPLE_SIZE = 2_000

# The oldest user (rank 0) gets every BIG_USER_SHARE-th task; the others are drawn with
# random()^3, which piles tasks onto low ranks: a few users own tens of thousands, most a few.
# Ids are UUIDv7 shifted back to the row's created_at, so id order is time order.
SEED_STATEMENTS = (
    "SELECT setseed(0.42)",
    # Skips the foreign key triggers: every owner below exists by construction.
    "SET session_replication_role = replica",
    """
    INSERT INTO users (id, version, created_at, updated_at, email, full_name, is_active)
    SELECT uuidv7(created - now()), 1, created, created,
           'user' || n || '@bench.example', 'Bench User ' || n, mod(n, 50) <> 0
    FROM (
        SELECT n, now() - interval '400 days' + n * interval '1 second' AS created
        FROM generate_series(1, %(users)s) AS n
    ) AS numbered
    """,
    """
    CREATE TEMP TABLE owner_rank AS
    SELECT (row_number() OVER (ORDER BY id) - 1)::int AS rank, id FROM users
    """,
    "CREATE UNIQUE INDEX ON owner_rank (rank)",
    """
    INSERT INTO tasks
        (id, version, created_at, updated_at, user_id, title, description, status, due_date)
    SELECT uuidv7(created - now()), 1, created, created, owner_rank.id, 'Task ' || n,
           CASE WHEN mod(n, 3) <> 0 THEN 'Seeded task number ' || n END,
           (ARRAY['todo', 'in_progress', 'done'])[1 + mod(n, 3)],
           CASE WHEN mod(n, 4) = 0 THEN (created + interval '14 days')::date END
    FROM (
        SELECT n, now() - interval '365 days' + n * (interval '365 days' / %(tasks)s) AS created,
               CASE WHEN mod(n, %(big_share)s) = 0 THEN 0
                    ELSE 1 + floor((%(users)s - 1) * random() ^ 3)::int END AS rank
        FROM generate_series(1, %(tasks)s) AS n
    ) AS numbered
    JOIN owner_rank USING (rank)
    ORDER BY n
    """,
)


@dataclass(frozen=True)
class SeededData:
    """Ids the load scripts address: the big user, a deep cursor and random samples."""

    big_user_id: uuid.UUID
    big_user_tasks: int
    deep_cursor: uuid.UUID
    user_ids: list[uuid.UUID]
    tasks: list[tuple[uuid.UUID, uuid.UUID]]  # (user_id, task_id)
    users: int
    total_tasks: int


@dataclass(frozen=True)
class BenchDatabase:
    """The running server: the app role's URL and the superuser URL to the app database."""

    server: EmbeddedPostgres
    app_url: str
    admin_url: str

    @property
    def postmaster_pid(self) -> int:
        """The server's main process; every backend is its child."""
        return int((self.server.data_dir / "postmaster.pid").read_text().split()[0])


def start_database(data_dir: Path) -> BenchDatabase:
    """Start an empty PostgreSQL 18 with a non-superuser app role owning the app database."""
    server = EmbeddedPostgres(data_dir, free_port())
    server.start()
    ensure_app_database(server.url(), APP_ROLE, APP_DATABASE)
    return BenchDatabase(
        server=server,
        app_url=server.url(APP_ROLE, APP_DATABASE),
        admin_url=server.url(database=APP_DATABASE),
    )


def migrate(database_url: str) -> None:
    """Build the schema with the production command, `python -m app migrate`."""
    subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        env={**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
        check=True,
    )


def seed(admin_url: str, users: int, tasks: int) -> SeededData:
    """Fill the tables server-side, analyse them and pick the ids the load addresses."""
    parameters = {"users": users, "tasks": tasks, "big_share": BIG_USER_SHARE}
    with psycopg.connect(admin_url, autocommit=True) as connection:
        with connection.transaction():
            for statement in SEED_STATEMENTS:
                connection.execute(statement, parameters if "%(" in statement else None)
        # VACUUM also sets the visibility map, as on a table that has lived a while.
        connection.execute("VACUUM (ANALYZE) users, tasks")
        return _pick_targets(connection, users, tasks)


def _pick_targets(connection: psycopg.Connection[Any], users: int, tasks: int) -> SeededData:
    connection.execute("SELECT setseed(0.42)")
    big_user_id, big_user_tasks = _one(
        connection,
        "SELECT user_id, count(*) FROM tasks"
        " WHERE user_id = (SELECT id FROM users ORDER BY id LIMIT 1) GROUP BY user_id",
    )
    (deep_cursor,) = _one(
        connection,
        "SELECT id FROM tasks WHERE user_id = %s ORDER BY id OFFSET %s LIMIT 1",
        [big_user_id, int(big_user_tasks * DEEP_PAGE_FRACTION)],
    )
    user_ids = [
        row[0]
        for row in connection.execute(
            "SELECT id FROM users ORDER BY random() LIMIT %s", [SAMPLE_SIZE]
        ).fetchall()
    ]
    sampled_tasks = [
        (row[0], row[1])
        for row in connection.execute(
            "SELECT user_id, id FROM tasks ORDER BY random() LIMIT %s", [SAMPLE_SIZE]
        ).fetchall()
    ]
    return SeededData(
        big_user_id=big_user_id,
        big_user_tasks=big_user_tasks,
        deep_cursor=deep_cursor,
        user_ids=user_ids,
        tasks=sampled_tasks,
        users=users,
        total_tasks=tasks,
    )


def _one(
    connection: psycopg.Connection[Any],
    query: str,
    params: list[object] | None = None,
) -> tuple[Any, ...]:
    row: tuple[Any, ...] | None = connection.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError(f"the seeded database has no row for: {query}")
    return row
