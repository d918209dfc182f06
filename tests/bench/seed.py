"""The benchmark's database: a throwaway PostgreSQL 18 with the two roles, migrated, seeded.

As in production, the owner role migrates and owns the schema and the runtime role serves
(it owns nothing, so row-level security binds it). Seeding runs as one set of
`generate_series` statements inside PostgreSQL (a million rows in seconds, no round trip per
row) as the superuser, which bypasses row-level security.

Every seeded user has an identity of the benchmark's OpenID Provider: issuer, and subject
`bench-user-<rank>` (rank 0 is the oldest user). The first `callers` ranks are the provider's
clients, whose client-credentials tokens (`sub` = client id) the load sends; rank 0 owns every
tenth task.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from app.dev.embedded_postgres import EmbeddedPostgres, ensure_app_database, free_port

DATABASE = "groundwork_bench"
OWNER_ROLE = "groundwork_bench_owner"
RUNTIME_ROLE = "groundwork_bench"
SUBJECT_PREFIX = "bench-user-"
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
    CREATE TEMP TABLE owner_rank AS
    SELECT n - 1 AS rank, uuidv7(created - now()) AS id, created AS user_created
    FROM (
        SELECT n, now() - interval '400 days' + n * interval '1 second' AS created
        FROM generate_series(1, %(users)s) AS n
    ) AS numbered
    """,
    "CREATE UNIQUE INDEX ON owner_rank (rank)",
    """
    INSERT INTO users
        (id, version, created_at, updated_at, issuer, subject, email, full_name, is_active)
    SELECT id, 1, user_created, user_created, %(issuer)s, %(subject_prefix)s || rank,
           'user' || rank || '@bench.example', 'Bench User ' || rank, mod(rank + 1, 50) <> 0
    FROM owner_rank
    """,
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


def subject_of(rank: int) -> str:
    """The subject (and client id) of the seeded user of `rank`."""
    return f"{SUBJECT_PREFIX}{rank}"


@dataclass(frozen=True)
class Caller:
    """A seeded user whose token the load sends: the client id is the token's `sub`."""

    subject: str
    user_id: uuid.UUID


@dataclass(frozen=True)
class SeededData:
    """What the load scripts address: the callers, the big user's pages, sampled tasks."""

    callers: list[Caller]  # callers[0] is the big user
    big_user_tasks: int
    deep_cursor: uuid.UUID
    tasks: list[tuple[Caller, uuid.UUID]]  # tasks of the callers, with their owner
    users: int
    total_tasks: int

    @property
    def big_user(self) -> Caller:
        """The user with every tenth task, whose pages are read."""
        return self.callers[0]


@dataclass(frozen=True)
class BenchDatabase:
    """The running server and its URLs: runtime role, owner role, superuser (app database)."""

    server: EmbeddedPostgres
    runtime_url: str
    owner_url: str
    admin_url: str

    @property
    def postmaster_pid(self) -> int:
        """The server's main process; every backend is its child."""
        return int((self.server.data_dir / "postmaster.pid").read_text().split()[0])


def start_database(data_dir: Path, preload: tuple[str, ...] = ()) -> BenchDatabase:
    """Start an empty PostgreSQL 18 with the owner and runtime roles and the app database.

    Args:
        data_dir: Where the server keeps its data.
        preload: Libraries for `shared_preload_libraries` (such as pg_stat_statements); the
            server restarts once to load them.
    """
    server = EmbeddedPostgres(data_dir, free_port())
    server.start()
    if preload:
        with psycopg.connect(server.url(), autocommit=True) as connection:
            libraries = sql.Literal(",".join(preload))
            set_libraries = sql.SQL("ALTER SYSTEM SET shared_preload_libraries = {}")
            connection.execute(set_libraries.format(libraries))
        server.stop()
        server.start()
    ensure_app_database(server.url(), DATABASE, OWNER_ROLE, RUNTIME_ROLE)
    return BenchDatabase(
        server=server,
        runtime_url=server.url(RUNTIME_ROLE, DATABASE),
        owner_url=server.url(OWNER_ROLE, DATABASE),
        admin_url=server.url(database=DATABASE),
    )


def migrate(database: BenchDatabase) -> None:
    """Build the schema with the production command, `python -m app migrate`, as the owner.

    The migration grants the runtime role (DATABASE_URL's) its row privileges.
    """
    subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        env={
            **os.environ,
            "DATABASE_URL": database.runtime_url,
            "MIGRATION_DATABASE_URL": database.owner_url,
            "LOG_LEVEL": "WARNING",
        },
        check=True,
    )


def seed(admin_url: str, users: int, tasks: int, issuer: str, callers: int) -> SeededData:
    """Fill the tables server-side, analyse them and pick what the load addresses.

    Args:
        admin_url: A superuser's URL to the app database.
        users: How many users to create.
        tasks: How many tasks to create.
        issuer: The OpenID Provider's issuer, every user's `issuer`.
        callers: How many of the oldest users the load sends tokens of.
    """
    parameters = {
        "users": users,
        "tasks": tasks,
        "big_share": BIG_USER_SHARE,
        "issuer": issuer,
        "subject_prefix": SUBJECT_PREFIX,
    }
    with psycopg.connect(admin_url, autocommit=True) as connection:
        with connection.transaction():
            for statement in SEED_STATEMENTS:
                connection.execute(statement, parameters if "%(" in statement else None)
        # VACUUM also sets the visibility map, as on a table that has lived a while.
        connection.execute("VACUUM (ANALYZE) users, tasks")
        return _pick_targets(connection, users, tasks, issuer, callers)


def _pick_targets(
    connection: psycopg.Connection[Any], users: int, tasks: int, issuer: str, callers: int
) -> SeededData:
    connection.execute("SELECT setseed(0.42)")
    subjects = [subject_of(rank) for rank in range(callers)]
    ids = dict(
        connection.execute(
            "SELECT subject, id FROM users WHERE issuer = %s AND subject = ANY(%s)",
            [issuer, subjects],
        ).fetchall()
    )
    if len(ids) != callers:
        raise RuntimeError(f"the seeded database has {len(ids)} of the {callers} callers")
    seeded_callers = [Caller(subject, ids[subject]) for subject in subjects]
    by_id = {caller.user_id: caller for caller in seeded_callers}
    big_user = seeded_callers[0]
    (big_user_tasks,) = _one(
        connection, "SELECT count(*) FROM tasks WHERE user_id = %s", [big_user.user_id]
    )
    (deep_cursor,) = _one(
        connection,
        "SELECT id FROM tasks WHERE user_id = %s ORDER BY id OFFSET %s LIMIT 1",
        [big_user.user_id, int(big_user_tasks * DEEP_PAGE_FRACTION)],
    )
    sampled_tasks = [
        (by_id[row[0]], row[1])
        for row in connection.execute(
            "SELECT user_id, id FROM tasks WHERE user_id = ANY(%s) ORDER BY random() LIMIT %s",
            [list(by_id), SAMPLE_SIZE],
        ).fetchall()
    ]
    return SeededData(
        callers=seeded_callers,
        big_user_tasks=big_user_tasks,
        deep_cursor=deep_cursor,
        tasks=sampled_tasks,
        users=users,
        total_tasks=tasks,
    )


def _one(
    connection: psycopg.Connection[Any],
    query: LiteralString,
    params: list[object] | None = None,
) -> tuple[Any, ...]:
    row: tuple[Any, ...] | None = connection.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError(f"the seeded database has no row for: {query}")
    return row
