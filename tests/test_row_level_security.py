"""Row-level security proven with the policies alone: queries that forget their WHERE clause.

Each test connects as the runtime role (`database.url`), as the server does, and becomes a
caller with `act_as_caller()`, the statement that starts every API transaction. Whatever the
application's own filters do, the database shows a caller only their own rows. The runtime
role cannot switch the policies off either: it owns nothing.
"""

from __future__ import annotations

import uuid
from typing import LiteralString

import psycopg
import pytest

from app.db.migrations import head_revisions
from app.identity.repository import DEACTIVATED_SQLSTATE
from tests.conftest import OWNER_ROLE
from tests.support import create_task

ACT_AS = "SELECT id::text FROM act_as_caller(%s, %s, NULL, NULL, %s, %s)"


@pytest.fixture
async def alice_and_bob(client, identities, identity_provider):
    """Alice (user-00) with tasks a1, a2 and Bob (user-01) with b1, made through the API."""
    alice, bob = identities.headers("user-00"), identities.headers("user-01")
    for title in ("a1", "a2"):
        await create_task(client, alice, title=title)
    await create_task(client, bob, title="b1")
    return identity_provider.issuer


def act_as(
    connection: psycopg.Connection, issuer: str, subject: str, *, admin: bool = False
) -> str:
    """Make `subject` the acting user of the connection's transaction; return their user id."""
    row = connection.execute(ACT_AS, [issuer, subject, admin, uuid.uuid4()]).fetchone()
    assert row is not None
    return str(row[0])


def seen(connection: psycopg.Connection, query: LiteralString) -> list[str]:
    return [value for (value,) in connection.execute(query).fetchall()]


def titles(connection: psycopg.Connection) -> list[str]:
    return seen(connection, "SELECT title FROM tasks ORDER BY title")


def subjects(connection: psycopg.Connection) -> list[str]:
    return seen(connection, "SELECT subject FROM users ORDER BY subject")


# --- What a caller sees ---------------------------------------------------------------------


async def test_unfiltered_queries_see_only_the_acting_users_rows(database, alice_and_bob):
    issuer = alice_and_bob
    for subject, expected in [("user-00", ["a1", "a2"]), ("user-01", ["b1"])]:
        with psycopg.connect(database.url) as connection:
            act_as(connection, issuer, subject)

            assert titles(connection) == expected
            assert subjects(connection) == [subject]


async def test_without_an_acting_user_nothing_is_visible(database, alice_and_bob):
    with psycopg.connect(database.url) as connection:
        assert titles(connection) == []
        assert subjects(connection) == []


async def test_an_admin_sees_every_user_but_only_their_own_tasks(database, alice_and_bob):
    with psycopg.connect(database.url) as connection:
        act_as(connection, alice_and_bob, "admin", admin=True)

        assert subjects(connection) == ["admin", "user-00", "user-01"]
        assert titles(connection) == []


async def test_a_caller_of_another_issuer_is_another_user(database, alice_and_bob):
    with psycopg.connect(database.url) as connection:
        act_as(connection, "https://login.other.example.com", "user-00")

        assert titles(connection) == []
        assert subjects(connection) == ["user-00"]  # their own, new row
        issuers = seen(connection, "SELECT issuer FROM users")
    assert issuers == ["https://login.other.example.com"]


async def test_the_acting_user_lasts_only_for_its_transaction(database, alice_and_bob):
    with psycopg.connect(database.url) as connection:
        act_as(connection, alice_and_bob, "user-00", admin=True)
        assert titles(connection) == ["a1", "a2"]
        connection.commit()

        assert titles(connection) == []
        assert subjects(connection) == []


# --- What a caller may write ----------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO tasks (id, version, user_id, title, status)"
        " VALUES (gen_random_uuid(), 1, %(bob)s, 'forged', 'todo')",
        "UPDATE tasks SET user_id = %(bob)s WHERE title = 'a1'",
        "INSERT INTO users (id, version, issuer, subject, is_active)"
        " VALUES (gen_random_uuid(), 1, %(issuer)s, 'user-39', true)",
    ],
    ids=["task for another", "task given away", "another user"],
)
async def test_a_caller_cannot_write_rows_of_someone_else(database, alice_and_bob, statement):
    issuer = alice_and_bob
    with psycopg.connect(database.url) as connection:
        bob = act_as(connection, issuer, "user-01")
        connection.commit()
        act_as(connection, issuer, "user-00")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(statement, {"bob": bob, "issuer": issuer})


@pytest.mark.parametrize(
    "change",
    ["is_active = false", "subject = 'user-39'", "issuer = 'https://elsewhere.example'"],
    ids=["deactivate oneself", "take another subject", "move to another issuer"],
)
async def test_a_caller_cannot_change_their_own_identity_or_activity(
    database, alice_and_bob, change: LiteralString
):
    with psycopg.connect(database.url) as connection:
        act_as(connection, alice_and_bob, "user-00")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(f"UPDATE users SET {change}")


async def test_a_deactivated_caller_is_refused_before_anything_runs(database, alice_and_bob):
    with psycopg.connect(database.url) as connection:
        alice = act_as(connection, alice_and_bob, "user-00")
        connection.commit()
        act_as(connection, alice_and_bob, "admin", admin=True)
        connection.execute("UPDATE users SET is_active = false WHERE subject = 'user-00'")
        connection.commit()

        with pytest.raises(psycopg.Error) as refused:
            act_as(connection, alice_and_bob, "user-00")
        connection.rollback()
        # Set by hand, the acting user sees the row but may not reactivate it: the policy refuses.
        connection.execute(
            "SELECT set_config('app.current_user_id', %s, true),"
            " set_config('app.current_issuer', %s, true),"
            " set_config('app.current_subject', 'user-00', true)",
            [alice, alice_and_bob],
        )
        visible = seen(connection, "SELECT subject FROM users")
        reactivated = connection.execute("UPDATE users SET is_active = true").rowcount

    assert refused.value.sqlstate == DEACTIVATED_SQLSTATE
    assert (visible, reactivated) == (["user-00"], 0)


async def test_updates_and_deletes_reach_only_the_acting_users_rows(database, alice_and_bob):
    with psycopg.connect(database.url) as connection:
        act_as(connection, alice_and_bob, "user-00")
        updated_tasks = connection.execute("UPDATE tasks SET title = 'x'").rowcount
        updated_users = connection.execute("UPDATE users SET full_name = 'x'").rowcount
        deleted_users = connection.execute("DELETE FROM users").rowcount
        deleted_tasks = connection.execute("DELETE FROM tasks").rowcount
        connection.rollback()

        assert (updated_tasks, updated_users, deleted_users, deleted_tasks) == (2, 1, 0, 2)
        act_as(connection, alice_and_bob, "user-01")
        assert titles(connection) == ["b1"]


async def test_an_admin_may_change_and_delete_any_user(database, alice_and_bob):
    with psycopg.connect(database.url) as connection:
        act_as(connection, alice_and_bob, "admin", admin=True)
        deactivated = connection.execute(
            "UPDATE users SET is_active = false WHERE subject = 'user-01'"
        ).rowcount
        deleted = connection.execute("DELETE FROM users WHERE subject = 'user-00'").rowcount
        connection.rollback()

    assert (deactivated, deleted) == (1, 1)


# --- The runtime role cannot switch the policies off ------------------------------------------


async def test_the_runtime_role_is_no_superuser_bypasses_nothing_and_owns_nothing(database):
    with psycopg.connect(database.url) as connection:
        row = connection.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb,"
            " (SELECT count(*) FROM pg_class WHERE relowner = r.oid),"
            " pg_has_role(current_user, %s, 'MEMBER')"
            " FROM pg_roles r WHERE rolname = current_user",
            [OWNER_ROLE],
        ).fetchone()

    assert row == (False, False, False, False, 0, False)


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE tasks DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE users NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE users DISABLE ROW LEVEL SECURITY",
        "DROP POLICY tasks_owner_isolation ON tasks",
        "DROP POLICY users_select ON users",
        "CREATE POLICY everything ON tasks USING (true)",
        "DROP TABLE tasks",
        "TRUNCATE tasks",
        "TRUNCATE users CASCADE",
        f"SET ROLE {OWNER_ROLE}",
        "CREATE TABLE public.x (id int)",
        "CREATE OR REPLACE FUNCTION act_as_caller(text, text, text, text, boolean, uuid)"
        " RETURNS SETOF users LANGUAGE sql AS 'SELECT * FROM users'",
        "INSERT INTO alembic_version VALUES ('9999')",
        "UPDATE alembic_version SET version_num = '0001'",
        "DELETE FROM alembic_version",
        "TRUNCATE alembic_version",
    ],
)
async def test_the_runtime_role_is_refused(database, statement):
    with (
        psycopg.connect(database.url) as connection,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        connection.execute(statement)


async def test_the_runtime_role_reads_the_schema_revision(database):
    with psycopg.connect(database.url) as connection:
        assert seen(connection, "SELECT version_num FROM alembic_version") == [head_revisions()[0]]
