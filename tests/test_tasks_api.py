"""Task endpoints: a user's tasks, isolated from every other user's."""

from __future__ import annotations

import uuid

import pytest

from tests.support import assert_problem, create_task, create_user


def tasks_url(user_id: str, task_id: str | None = None) -> str:
    base = f"/api/v1/users/{user_id}/tasks"
    return f"{base}/{task_id}" if task_id else base


async def test_create_then_read_back(client):
    user = await create_user(client)

    created = await client.post(
        tasks_url(user["id"]),
        json={
            "title": "Ship",
            "description": "v1",
            "status": "in_progress",
            "due_date": "2026-12-01",
        },
    )

    assert created.status_code == 201
    task = created.json()
    assert created.headers["location"] == tasks_url(user["id"], task["id"])
    assert task["user_id"] == user["id"]
    assert (task["title"], task["description"], task["status"], task["due_date"]) == (
        "Ship",
        "v1",
        "in_progress",
        "2026-12-01",
    )
    assert (await client.get(tasks_url(user["id"], task["id"]))).json() == task


async def test_defaults(client):
    user = await create_user(client)

    task = await create_task(client, user["id"])

    assert (task["status"], task["description"], task["due_date"], task["version"]) == (
        "todo",
        None,
        None,
        1,
    )


async def test_creating_for_a_missing_user_is_404(client):
    missing = uuid.uuid4()

    body = assert_problem(await client.post(tasks_url(str(missing)), json={"title": "x"}), 404)

    assert body["detail"] == f"user {missing} does not exist"


async def test_update_can_clear_nullable_fields_but_not_the_title(client):
    user = await create_user(client)
    task = await create_task(client, user["id"], description="d", due_date="2026-01-01")
    url = tasks_url(user["id"], task["id"])

    cleared = await client.patch(
        url, json={"description": None, "due_date": None, "status": "done"}
    )
    nulled_title = await client.patch(url, json={"title": None})

    assert cleared.status_code == 200
    assert (cleared.json()["description"], cleared.json()["due_date"]) == (None, None)
    assert cleared.json()["status"] == "done"
    assert_problem(nulled_title, 422)


async def test_conditional_update_and_delete_of_a_task(client):
    user = await create_user(client)
    task = await create_task(client, user["id"])
    url = tasks_url(user["id"], task["id"])
    first = {"If-Match": '"1"'}

    ok = await client.patch(url, json={"title": "a"}, headers=first)
    stale = await client.patch(url, json={"title": "b"}, headers=first)
    missing = await client.patch(
        tasks_url(user["id"], str(uuid.uuid4())), json={"title": "c"}, headers=first
    )
    stale_delete = await client.delete(url, headers=first)

    assert (ok.json()["version"], ok.headers["etag"]) == (2, '"2"')
    assert_problem(stale, 412)
    assert_problem(missing, 404)
    assert_problem(stale_delete, 412)
    fetched = await client.get(url)
    assert (fetched.json()["title"], fetched.headers["etag"]) == ("a", '"2"')


async def test_delete(client):
    user = await create_user(client)
    task = await create_task(client, user["id"])
    url = tasks_url(user["id"], task["id"])

    assert (await client.delete(url)).status_code == 204
    assert_problem(await client.get(url), 404)
    assert_problem(await client.delete(url), 404)


async def test_another_users_task_is_invisible_through_every_method(client):
    owner = await create_user(client, "owner@example.com")
    intruder = await create_user(client, "intruder@example.com")
    task = await create_task(client, owner["id"])
    foreign = tasks_url(intruder["id"], task["id"])

    assert_problem(await client.get(foreign), 404)
    assert_problem(await client.patch(foreign, json={"title": "mine now"}), 404)
    assert_problem(await client.delete(foreign), 404)
    assert (await client.get(tasks_url(intruder["id"]))).json()["items"] == []
    assert (await client.get(tasks_url(owner["id"], task["id"]))).json()["title"] == task["title"]


async def test_list_filters_by_status_and_pages_in_creation_order(client):
    user = await create_user(client)
    statuses = ["todo", "done", "todo", "in_progress", "todo", "done", "todo"]
    created = [
        await create_task(client, user["id"], title=f"t{i}", status=s)
        for i, s in enumerate(statuses)
    ]

    async def collect(**params):
        ids, cursor = [], None
        while True:
            page = (
                await client.get(
                    tasks_url(user["id"]),
                    params={"limit": 2, **params} | ({"cursor": cursor} if cursor else {}),
                )
            ).json()
            ids += [task["id"] for task in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                return ids

    assert await collect() == [task["id"] for task in created]
    assert await collect(status="todo") == [
        task["id"] for task in created if task["status"] == "todo"
    ]


async def test_listing_tasks_of_a_missing_user_is_404(client):
    assert_problem(await client.get(tasks_url(str(uuid.uuid4()))), 404)


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "x", "status": "blocked"},
        {"title": "x", "due_date": "tomorrow"},
        {"title": "x", "due_date": 20260101},
        {"title": "x", "owner": "someone"},
        {"title": ["x"]},
    ],
)
async def test_invalid_task_fields_are_422(client, body):
    user = await create_user(client)

    assert_problem(await client.post(tasks_url(user["id"]), json=body), 422)
    assert (await client.get(tasks_url(user["id"]))).json()["items"] == []


async def test_invalid_status_filter_is_422(client):
    user = await create_user(client)

    assert_problem(await client.get(tasks_url(user["id"]), params={"status": "nope"}), 422)
