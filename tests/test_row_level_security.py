"""Row-level security on tasks, proven with queries that forget their WHERE clause."""

from __future__ import annotations

import psycopg
import pytest

from tests.support import create_task, create_user

ACT_AS = "SELECT set_config('app.current_user_id', %s, true)"


@pytest.fixture
async def two_users_with_tasks(client):
    alice = await create_user(client, "alice@example.com")
    bob = await create_user(client, "bob@example.com")
    for title in ("a1", "a2"):
        await create_task(client, alice["id"], title=title)
    await create_task(client, bob["id"], title="b1")
    return alice, bob


def titles_seen(database, acting_user_id: str | None) -> list[str]:
    with psycopg.connect(database.url) as connection:
        if acting_user_id is not None:
            connection.execute(ACT_AS, [acting_user_id])
        rows = connection.execute("SELECT title FROM tasks ORDER BY title").fetchall()
    return [title for (title,) in rows]


async def test_the_app_role_is_not_a_superuser(database):
    with psycopg.connect(database.url) as connection:
        row = connection.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()

    assert row == (False, False)


async def test_unfiltered_query_sees_only_the_acting_users_tasks(database, two_users_with_tasks):
    alice, bob = two_users_with_tasks

    assert titles_seen(database, alice["id"]) == ["a1", "a2"]
    assert titles_seen(database, bob["id"]) == ["b1"]


async def test_without_an_acting_user_no_task_is_visible(database, two_users_with_tasks):
    assert titles_seen(database, None) == []


async def test_the_acting_user_lasts_only_for_its_transaction(database, two_users_with_tasks):
    alice, _ = two_users_with_tasks
    with psycopg.connect(database.url) as connection:
        connection.execute(ACT_AS, [alice["id"]])
        connection.commit()
        assert connection.execute("SELECT count(*) FROM tasks").fetchone() == (0,)


async def test_cannot_write_a_task_for_another_user(database, two_users_with_tasks):
    alice, bob = two_users_with_tasks
    with psycopg.connect(database.url) as connection:
        connection.execute(ACT_AS, [alice["id"]])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(
                "INSERT INTO tasks (id, version, user_id, title, status) "
                "VALUES (gen_random_uuid(), 1, %s, 'forged', 'todo')",
                [bob["id"]],
            )


async def test_updates_and_deletes_cannot_reach_other_users_rows(database, two_users_with_tasks):
    alice, _ = two_users_with_tasks
    with psycopg.connect(database.url) as connection:
        connection.execute(ACT_AS, [alice["id"]])
        updated = connection.execute("UPDATE tasks SET title = 'x'").rowcount
        deleted = connection.execute("DELETE FROM tasks").rowcount
        connection.rollback()

    assert (updated, deleted) == (2, 2)
    assert titles_seen(database, None) == []
    assert sorted(titles_seen(database, alice["id"])) == ["a1", "a2"]
