"""Task endpoints: the caller's own tasks at /api/v1/me/tasks, invisible to every other caller."""

from __future__ import annotations

import uuid

import pytest

from tests.support import assert_problem, create_task

TASKS = "/api/v1/me/tasks"


def task_url(task_id: str) -> str:
    return f"{TASKS}/{task_id}"


@pytest.fixture
def ada(identities):
    return identities.headers("user-00")


@pytest.fixture
def grace(identities):
    return identities.headers("user-01")


async def test_create_then_read_back(client, ada):
    me = (await client.get("/api/v1/me", headers=ada)).json()

    created = await client.post(
        TASKS,
        json={
            "title": "Ship",
            "description": "v1",
            "status": "in_progress",
            "due_date": "2026-12-01",
        },
        headers=ada,
    )

    assert created.status_code == 201
    task = created.json()
    assert created.headers["location"] == task_url(task["id"])
    assert created.headers["etag"] == '"1"'
    assert task["user_id"] == me["id"]
    assert (task["title"], task["description"], task["status"], task["due_date"]) == (
        "Ship",
        "v1",
        "in_progress",
        "2026-12-01",
    )
    fetched = await client.get(task_url(task["id"]), headers=ada)
    assert (fetched.json(), fetched.headers["etag"]) == (task, '"1"')


@pytest.mark.parametrize(
    "text",
    [
        "'); DELETE FROM tasks; --",
        "%(id)s %s $1 %% \\' \\\\",
        "E'\\x41' $$ $body$ ;",
        "Grüße 🙂 \u202e",
    ],
    ids=["quote and statement", "placeholders", "escapes and dollar quotes", "unicode"],
)
async def test_values_are_stored_as_sent_never_as_sql(client, ada, grace, text):
    # Statements carry their values as quoted literals (client-side binding): what looks like
    # SQL or a placeholder is text, and nothing else changes.
    await create_task(client, grace, title="grace's")
    created = await client.post(TASKS, json={"title": text, "description": text}, headers=ada)
    task = (await client.get(task_url(created.json()["id"]), headers=ada)).json()
    changed = await client.patch(task_url(task["id"]), json={"title": text + "!"}, headers=ada)

    assert (task["title"], task["description"]) == (text, text)
    assert changed.json()["title"] == text + "!"
    assert len((await client.get(TASKS, headers=grace)).json()["items"]) == 1


async def test_defaults(client, ada):
    task = await create_task(client, ada)

    assert (task["status"], task["description"], task["due_date"], task["version"]) == (
        "todo",
        None,
        None,
        1,
    )


async def test_the_first_task_provisions_its_owner(client, ada):
    task = await create_task(client, ada)

    me = (await client.get("/api/v1/me", headers=ada)).json()
    assert task["user_id"] == me["id"]


async def test_update_can_clear_nullable_fields_but_not_the_title(client, ada):
    task = await create_task(client, ada, description="d", due_date="2026-01-01")
    url = task_url(task["id"])

    cleared = await client.patch(
        url, json={"description": None, "due_date": None, "status": "done"}, headers=ada
    )
    nulled_title = await client.patch(url, json={"title": None}, headers=ada)

    assert cleared.status_code == 200
    assert (cleared.json()["description"], cleared.json()["due_date"]) == (None, None)
    assert cleared.json()["status"] == "done"
    assert_problem(nulled_title, 422)


async def test_conditional_update_and_delete_of_a_task(client, ada):
    task = await create_task(client, ada)
    url = task_url(task["id"])
    first = {**ada, "If-Match": '"1"'}

    ok = await client.patch(url, json={"title": "a"}, headers=first)
    stale = await client.patch(url, json={"title": "b"}, headers=first)
    missing = await client.patch(task_url(str(uuid.uuid4())), json={"title": "c"}, headers=first)
    stale_delete = await client.delete(url, headers=first)

    assert (ok.json()["version"], ok.headers["etag"]) == (2, '"2"')
    assert assert_problem(stale, 412)["type"].endswith("/precondition-failed")
    assert_problem(missing, 404)
    assert_problem(stale_delete, 412)
    fetched = await client.get(url, headers=ada)
    assert (fetched.json()["title"], fetched.headers["etag"]) == ("a", '"2"')
    current = await client.delete(url, headers={**ada, "If-Match": '"2"'})
    assert current.status_code == 204


async def test_delete(client, ada):
    task = await create_task(client, ada)
    url = task_url(task["id"])

    assert (await client.delete(url, headers=ada)).status_code == 204
    assert_problem(await client.get(url, headers=ada), 404)
    assert_problem(await client.delete(url, headers=ada), 404)
    assert (await client.get(TASKS, headers=ada)).json()["items"] == []


async def test_an_unknown_task_id_is_404(client, ada):
    missing = uuid.uuid4()

    body = assert_problem(await client.get(task_url(str(missing)), headers=ada), 404)

    assert body["detail"] == f"task {missing} does not exist"


async def test_another_callers_task_is_invisible_through_every_method(client, ada, grace):
    task = await create_task(client, ada)
    foreign = task_url(task["id"])

    assert_problem(await client.get(foreign, headers=grace), 404)
    assert_problem(await client.patch(foreign, json={"title": "mine now"}, headers=grace), 404)
    assert_problem(
        await client.patch(foreign, json={"title": "x"}, headers={**grace, "If-Match": "*"}), 404
    )
    assert_problem(await client.delete(foreign, headers=grace), 404)
    assert (await client.get(TASKS, headers=grace)).json() == {"items": [], "next_cursor": None}
    unchanged = (await client.get(foreign, headers=ada)).json()
    assert unchanged == task


async def test_each_caller_lists_only_their_own_tasks(client, ada, grace):
    mine = [await create_task(client, ada, title=f"ada {n}") for n in range(3)]
    theirs = await create_task(client, grace, title="grace")

    ada_sees = (await client.get(TASKS, headers=ada)).json()["items"]
    grace_sees = (await client.get(TASKS, headers=grace)).json()["items"]

    assert ada_sees == mine
    assert grace_sees == [theirs]
    assert theirs["user_id"] != mine[0]["user_id"]


async def test_list_filters_by_status_and_pages_in_creation_order(client, ada, grace):
    statuses = ["todo", "done", "todo", "in_progress", "todo", "done", "todo"]
    created = [
        await create_task(client, ada, title=f"t{i}", status=s) for i, s in enumerate(statuses)
    ]
    await create_task(client, grace, title="not ada's", status="todo")

    async def collect(**params):
        ids, cursor = [], None
        while True:
            page = (
                await client.get(
                    TASKS,
                    params={"limit": 2, **params} | ({"cursor": cursor} if cursor else {}),
                    headers=ada,
                )
            ).json()
            assert len(page["items"]) <= 2
            ids += [task["id"] for task in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                return ids

    assert await collect() == [task["id"] for task in created]
    assert await collect(status="todo") == [
        task["id"] for task in created if task["status"] == "todo"
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "x", "status": "blocked"},
        {"title": "x", "due_date": "tomorrow"},
        {"title": "x", "due_date": 20260101},
        {"title": "x", "owner": "someone"},
        {"title": "x", "user_id": "0190f3c2-7a41-7c3e-9f1a-2b3c4d5e6f70"},
        {"title": ["x"]},
    ],
)
async def test_invalid_task_fields_are_422(client, ada, body):
    assert_problem(await client.post(TASKS, json=body, headers=ada), 422)
    assert (await client.get(TASKS, headers=ada)).json()["items"] == []


async def test_invalid_status_filter_is_422(client, ada):
    assert_problem(await client.get(TASKS, params={"status": "nope"}, headers=ada), 422)


async def test_a_read_only_token_lists_and_reads(client, identities):
    writer = identities.headers("reader")
    reader = identities.headers("reader", scope="tasks:read")
    task = await create_task(client, writer)

    listed = await client.get(TASKS, headers=reader)
    fetched = await client.get(task_url(task["id"]), headers=reader)

    assert listed.json()["items"] == [task]
    assert fetched.json() == task


def assert_insufficient_scope(response, scope: str) -> None:
    body = assert_problem(response, 403)
    assert body["type"].endswith("/insufficient-scope")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{scope}"' in challenge


async def test_a_read_only_token_cannot_write(client, identities):
    writer = identities.headers("reader")
    reader = identities.headers("reader", scope="tasks:read")
    task = await create_task(client, writer)
    url = task_url(task["id"])

    created = await client.post(TASKS, json={"title": "no"}, headers=reader)
    updated = await client.patch(url, json={"title": "no"}, headers=reader)
    deleted = await client.delete(url, headers=reader)

    for response in (created, updated, deleted):
        assert_insufficient_scope(response, "tasks:write")
    assert (await client.get(TASKS, headers=reader)).json()["items"] == [task]


async def test_a_write_only_token_cannot_read(client, identities):
    writer = identities.headers("reader", scope="tasks:write")
    task = await create_task(client, writer)

    listed = await client.get(TASKS, headers=writer)
    fetched = await client.get(task_url(task["id"]), headers=writer)

    for response in (listed, fetched):
        assert_insufficient_scope(response, "tasks:read")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", TASKS),
        ("POST", TASKS),
        ("GET", task_url("0190f3c2-7a41-7c3e-9f1a-2b3c4d5e6f70")),
        ("PATCH", task_url("0190f3c2-7a41-7c3e-9f1a-2b3c4d5e6f70")),
        ("DELETE", task_url("0190f3c2-7a41-7c3e-9f1a-2b3c4d5e6f70")),
    ],
)
async def test_every_task_operation_needs_a_token(client, method, path):
    body = {"title": "x"} if method in {"POST", "PATCH"} else None

    response = await client.request(method, path, json=body)

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_bad_token_is_refused_as_invalid(client):
    response = await client.get(TASKS, headers={"Authorization": "Bearer not.a.jwt"})

    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
