"""Bad input gets a clear 4xx problem response and changes nothing; never a 500.

Every request carries a valid token (an admin's for /api/v1/users, a user's for their own
tasks), so what is refused is the input itself.
"""

from __future__ import annotations

import uuid

import pytest

from tests.support import assert_problem, create_task, create_user

USERS = "/api/v1/users"
TASKS = "/api/v1/me/tasks"
VALID_USER = {"subject": "ada", "email": "ada@example.com", "full_name": "Ada"}
JSON = {"content-type": "application/json"}


@pytest.fixture
def admin(identities):
    return identities.admin


@pytest.fixture
def ada(identities):
    return identities.headers("user-00")


async def subjects_listed(client, admin) -> list[str]:
    return [user["subject"] for user in (await client.get(USERS, headers=admin)).json()["items"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "ada@example.com"}, "subject"),
        ({"subject": ""}, "subject"),
        ({"subject": 42}, "subject"),
        ({"subject": "x" * 256}, "subject"),
        ({"subject": "a\u0000b"}, "subject"),
        ({**VALID_USER, "issuer": ""}, "issuer"),
        ({**VALID_USER, "issuer": "x" * 2049}, "issuer"),
        ({**VALID_USER, "email": "not-an-email"}, "email"),
        ({**VALID_USER, "email": "a b@example.com"}, "email"),
        ({**VALID_USER, "email": "a" * 65 + "@example.com"}, "email"),
        ({**VALID_USER, "email": "\u00e9@example.com"}, "email"),
        ({**VALID_USER, "full_name": ""}, "full_name"),
        ({**VALID_USER, "full_name": 42}, "full_name"),
        ({**VALID_USER, "is_active": "yes"}, "is_active"),
        ({**VALID_USER, "is_admin": True}, "is_admin"),
        ({**VALID_USER, "roles": ["admin"]}, "roles"),
        ({**VALID_USER, "full_name": "A\u0000da"}, "full_name"),
        ({**VALID_USER, "full_name": "x" * 201}, "full_name"),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(client, admin, body, field):
    response = await client.post(USERS, json=body, headers=admin)

    problem = assert_problem(response, 422)
    assert [error["loc"][-1] for error in problem["errors"]] == [field]
    assert await subjects_listed(client, admin) == ["admin"]


async def test_lone_surrogate_is_rejected_not_a_500(client, admin):
    raw = b'{"subject": "ada", "full_name": "\\ud800"}'

    response = await client.post(USERS, content=raw, headers={**admin, **JSON})

    assert_problem(response, 422)


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"subject": ', b"\xff\xfe not utf-8", b"[1, 2", b"nul\x00"],
)
@pytest.mark.parametrize("path", [USERS, TASKS])
async def test_malformed_json_is_400(client, admin, path, raw):
    response = await client.post(path, content=raw, headers={**admin, **JSON})

    assert_problem(response, 400)


async def test_a_json_array_instead_of_an_object_is_422(client, admin):
    response = await client.post(USERS, json=[VALID_USER], headers=admin)

    assert_problem(response, 422)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("path", [USERS, TASKS])
async def test_non_json_content_type_is_415(client, admin, path, content_type):
    response = await client.post(
        path, content=b"subject=ada", headers={**admin, "content-type": content_type}
    )

    assert_problem(response, 415)


@pytest.mark.parametrize("authenticated", [True, False], ids=["with a token", "without"])
async def test_oversized_body_is_413_before_parsing(client, admin, settings, authenticated):
    huge = b'{"subject": "' + b"a" * (settings.max_request_body_bytes + 1) + b'"}'
    headers = {**(admin if authenticated else {}), **JSON}

    response = await client.post(USERS, content=huge, headers=headers)

    assert_problem(response, 413)


async def test_oversized_streamed_body_without_length_is_413(client, ada, settings):
    async def chunks():
        for _ in range(settings.max_request_body_bytes // 65536 + 2):
            yield b" " * 65536

    response = await client.post(TASKS, content=chunks(), headers={**ada, **JSON})

    assert_problem(response, 413)


@pytest.mark.parametrize(
    "path",
    [
        f"{USERS}/not-a-uuid",
        f"{USERS}/123",
        f"{USERS}/11594895521300901006472072134656",
        f"{USERS}/{{0190f3c2-7a41-7c3e-9f1a-2b3c4d5e6f70}}",
        f"{TASKS}/00000000-0000-0000-0000-00000000000g",
        f"{TASKS}/not-a-uuid",
    ],
)
async def test_invalid_uuid_in_path_is_422(client, admin, path):
    problem = assert_problem(await client.get(path, headers=admin), 422)
    assert problem["errors"][0]["loc"][0] == "path"


@pytest.mark.parametrize("path", [USERS, TASKS])
async def test_invalid_cursor_is_422(client, admin, path):
    assert_problem(await client.get(path, params={"cursor": "abc"}, headers=admin), 422)


async def test_patch_rejects_null_for_required_fields_and_empty_bodies(client, admin):
    user = await create_user(client, admin)
    url = f"{USERS}/{user['id']}"

    for body in ({"is_active": None}, {}, {"version": 2}, {"subject": "grace"}):
        assert_problem(await client.patch(url, json=body, headers=admin), 422)
    assert (await client.get(url, headers=admin)).json() == user


async def test_task_patch_rejects_empty_and_unknown_fields(client, ada):
    task = await create_task(client, ada)
    url = f"{TASKS}/{task['id']}"

    for body in ({}, {"version": 2}, {"user_id": str(uuid.uuid4())}, {"status": None}):
        assert_problem(await client.patch(url, json=body, headers=ada), 422)
    assert (await client.get(url, headers=ada)).json() == task


async def test_an_unknown_route_is_404(client, admin):
    assert_problem(await client.get("/api/v1/nothing-here", headers=admin), 404)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (f"{USERS}/{uuid.uuid4()}", "DELETE, GET, PATCH"),
        (f"{TASKS}/{uuid.uuid4()}", "DELETE, GET, PATCH"),
        ("/api/v1/me", "GET, PATCH"),
    ],
)
async def test_an_unsupported_method_is_405_listing_the_allowed(client, admin, path, allowed):
    not_allowed = await client.put(path, headers=admin)
    assert_problem(not_allowed, 405)
    assert not_allowed.headers["allow"] == allowed


@pytest.mark.parametrize(
    "text",
    ["Robert'); DROP TABLE users;--", "\U0001f680 emoji \u00e9\u00e8 \u4e2d\u6587", "a\tb\nc"],
)
async def test_unusual_strings_are_stored_exactly(client, admin, ada, text):
    user = await create_user(client, admin, full_name=text)
    task = await create_task(client, ada, title=text, description=text)

    assert (await client.get(f"{USERS}/{user['id']}", headers=admin)).json()["full_name"] == text
    stored = (await client.get(f"{TASKS}/{task['id']}", headers=ada)).json()
    assert (stored["title"], stored["description"]) == (text, text)


async def test_deeply_nested_json_is_a_4xx(client, admin):
    nested = b'{"subject": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    response = await client.post(USERS, content=nested, headers={**admin, **JSON})

    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


async def test_request_id_is_echoed_or_generated(client):
    echoed = await client.get("/health/db", headers={"X-Request-ID": "abc-123"})
    generated = await client.get("/health/db")
    rejected = await client.get("/health/db", headers={"X-Request-ID": "bad id\nwith newline"})

    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32
    assert rejected.headers["x-request-id"] != "bad id\nwith newline"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Authorization": "Bearer not-a-token"}, 401), ({}, 401), (None, 422)],
    ids=["bad token", "no token", "bad id"],
)
async def test_problem_carries_the_request_id(client, admin, headers, status):
    response = await client.get(
        f"{USERS}/nope", headers={**(admin if headers is None else headers), "X-Request-ID": "t-1"}
    )

    assert assert_problem(response, status)["request_id"] == "t-1"
