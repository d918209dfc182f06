"""User endpoints through httpx against the real app and a real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.support import assert_problem, create_task, create_user

USERS = "/api/v1/users"


async def test_create_then_read_back(client):
    created = await client.post(USERS, json={"email": "ada@example.com", "full_name": "Ada"})

    assert created.status_code == 201
    user = created.json()
    assert created.headers["location"] == f"{USERS}/{user['id']}"
    assert uuid.UUID(user["id"]).version == 7
    assert user | {"id": None, "created_at": None, "updated_at": None} == {
        "id": None,
        "email": "ada@example.com",
        "full_name": "Ada",
        "is_active": True,
        "version": 1,
        "created_at": None,
        "updated_at": None,
    }
    assert created.headers["etag"] == '"1"'
    fetched = await client.get(f"{USERS}/{user['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == user
    assert fetched.headers["etag"] == '"1"'


async def test_email_is_unique_whatever_the_case(client):
    await create_user(client, "ada@example.com")

    duplicate = await client.post(USERS, json={"email": "ADA@example.com", "full_name": "Other"})

    body = assert_problem(duplicate, 409)
    assert body["detail"] == "a user with this email already exists"
    assert (await client.get(USERS)).json()["items"].__len__() == 1


async def test_update_changes_only_the_fields_sent(client):
    user = await create_user(client)

    response = await client.patch(f"{USERS}/{user['id']}", json={"full_name": "Ada King"})

    assert response.status_code == 200
    updated = response.json()
    assert updated["full_name"] == "Ada King"
    assert updated["email"] == user["email"]
    assert updated["version"] == 2
    assert response.headers["etag"] == '"2"'
    assert updated["updated_at"] > user["updated_at"]


async def test_update_to_a_taken_email_conflicts(client):
    await create_user(client, "ada@example.com")
    other = await create_user(client, "grace@example.com")

    response = await client.patch(f"{USERS}/{other['id']}", json={"email": "Ada@Example.com"})

    assert_problem(response, 409)


async def test_a_stale_if_match_is_412_and_changes_nothing(client):
    user = await create_user(client)
    url = f"{USERS}/{user['id']}"
    etag = (await client.get(url)).headers["etag"]
    first = await client.patch(url, json={"full_name": "First"}, headers={"If-Match": etag})
    assert first.status_code == 200

    stale = await client.patch(url, json={"full_name": "Second"}, headers={"If-Match": etag})

    body = assert_problem(stale, 412)
    assert body["type"].endswith("/precondition-failed")
    assert (
        body["detail"] == "the user changed since the version in If-Match; read it again and retry"
    )
    assert (await client.get(url)).json()["full_name"] == "First"


@pytest.mark.parametrize("if_match", ['"1"', '"7", "1"', "*", ' "1" '])
async def test_if_match_accepts_the_current_tag_among_others_or_a_star(client, if_match):
    user = await create_user(client)

    response = await client.patch(
        f"{USERS}/{user['id']}", json={"is_active": False}, headers={"If-Match": if_match}
    )

    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'


@pytest.mark.parametrize("if_match", ['W/"1"', "1", '"01"', '"2"', "", "garbage", '"99999999999"'])
async def test_if_match_without_the_current_strong_tag_is_412(client, if_match):
    user = await create_user(client)
    url = f"{USERS}/{user['id']}"

    response = await client.patch(url, json={"is_active": False}, headers={"If-Match": if_match})

    assert_problem(response, 412)
    assert (await client.get(url)).json() == user


async def test_if_match_on_a_missing_user_is_404(client):
    response = await client.patch(
        f"{USERS}/{uuid.uuid4()}", json={"full_name": "X"}, headers={"If-Match": '"1"'}
    )

    assert_problem(response, 404)


async def test_without_if_match_the_last_write_wins(client):
    user = await create_user(client)
    url = f"{USERS}/{user['id']}"
    await client.patch(url, json={"full_name": "First"})

    response = await client.patch(url, json={"full_name": "Second"})

    assert response.status_code == 200
    assert response.json()["version"] == 3


async def test_a_conditional_delete_of_a_changed_user_is_412(client):
    user = await create_user(client)
    url = f"{USERS}/{user['id']}"
    await client.patch(url, json={"full_name": "Changed"})

    stale = await client.delete(url, headers={"If-Match": '"1"'})
    current = await client.delete(url, headers={"If-Match": '"2"'})

    assert_problem(stale, 412)
    assert current.status_code == 204
    assert_problem(await client.get(url), 404)


async def test_delete_removes_the_user_and_their_tasks(client, database):
    user = await create_user(client)
    await create_task(client, user["id"])

    deleted = await client.delete(f"{USERS}/{user['id']}")

    assert deleted.status_code == 204
    assert_problem(await client.get(f"{USERS}/{user['id']}"), 404)
    assert_problem(await client.delete(f"{USERS}/{user['id']}"), 404)
    assert_problem(await client.get(f"{USERS}/{user['id']}/tasks"), 404)


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
async def test_unknown_user_is_404(client, method):
    missing = uuid.uuid4()
    kwargs = {"json": {"full_name": "X"}} if method == "patch" else {}

    response = await getattr(client, method)(f"{USERS}/{missing}", **kwargs)

    body = assert_problem(response, 404)
    assert body["detail"] == f"user {missing} does not exist"
    assert body["instance"] == f"{USERS}/{missing}"


async def test_list_pages_through_every_user_once_in_creation_order(client):
    emails = [f"user{number:02d}@example.com" for number in range(7)]
    for email in emails:
        await create_user(client, email)

    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(USERS, params=params)).json()
        seen += [user["email"] for user in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == emails


async def test_a_full_last_page_has_no_next_cursor(client):
    for number in range(2):
        await create_user(client, f"user{number}@example.com")

    page = (await client.get(USERS, params={"limit": 2})).json()

    assert len(page["items"]) == 2
    assert page["next_cursor"] is None


@pytest.mark.parametrize("limit", [0, 101, -1, "ten"])
async def test_page_size_is_bounded(client, limit):
    assert_problem(await client.get(USERS, params={"limit": limit}), 422)
