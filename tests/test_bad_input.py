"""Bad input gets a clear 4xx problem response and changes nothing; never a 500."""

from __future__ import annotations

import uuid

import pytest

from tests.support import assert_problem, create_user

USERS = "/api/v1/users"
VALID_USER = {"email": "ada@example.com", "full_name": "Ada"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"full_name": "Ada"}, "email"),
        ({"email": "not-an-email", "full_name": "Ada"}, "email"),
        ({"email": "a b@example.com", "full_name": "Ada"}, "email"),
        ({"email": "a" * 65 + "@example.com", "full_name": "Ada"}, "email"),
        ({"email": "\u00e9@example.com", "full_name": "Ada"}, "email"),
        ({"email": "ada@example.com", "full_name": ""}, "full_name"),
        ({"email": "ada@example.com", "full_name": 42}, "full_name"),
        ({"email": "ada@example.com", "full_name": "Ada", "is_active": "yes"}, "is_active"),
        ({"email": "ada@example.com", "full_name": "Ada", "is_admin": True}, "is_admin"),
        ({"email": "ada@example.com", "full_name": "A\u0000da"}, "full_name"),
        ({"email": "ada@example.com", "full_name": "x" * 201}, "full_name"),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(client, body, field):
    response = await client.post(USERS, json=body)

    problem = assert_problem(response, 422)
    assert [error["loc"][-1] for error in problem["errors"]] == [field]
    assert (await client.get(USERS)).json()["items"] == []


async def test_lone_surrogate_is_rejected_not_a_500(client):
    raw = b'{"email": "ada@example.com", "full_name": "\\ud800"}'

    response = await client.post(USERS, content=raw, headers={"content-type": "application/json"})

    assert_problem(response, 422)


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"email": ', b"\xff\xfe not utf-8", b"[1, 2", b"nul\x00"],
)
async def test_malformed_json_is_400(client, raw):
    response = await client.post(USERS, content=raw, headers={"content-type": "application/json"})

    assert_problem(response, 400)


async def test_a_json_array_instead_of_an_object_is_422(client):
    response = await client.post(USERS, json=[VALID_USER])

    assert_problem(response, 422)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_non_json_content_type_is_415(client, content_type):
    response = await client.post(
        USERS, content=b"email=ada@example.com", headers={"content-type": content_type}
    )

    assert_problem(response, 415)


async def test_oversized_body_is_413_before_parsing(client, settings):
    huge = b'{"email": "' + b"a" * (settings.max_request_body_bytes + 1) + b'"}'

    response = await client.post(USERS, content=huge, headers={"content-type": "application/json"})

    assert_problem(response, 413)


async def test_oversized_streamed_body_without_length_is_413(client, settings):
    async def chunks():
        for _ in range(settings.max_request_body_bytes // 65536 + 2):
            yield b" " * 65536

    response = await client.post(
        USERS, content=chunks(), headers={"content-type": "application/json"}
    )

    assert_problem(response, 413)


@pytest.mark.parametrize(
    "path",
    [
        f"{USERS}/not-a-uuid",
        f"{USERS}/123",
        f"{USERS}/00000000-0000-0000-0000-00000000000g/tasks",
        f"{USERS}/11594895521300901006472072134656",
        f"{USERS}/{{0190f3c2-7a41-7c3e-9f1a-2b3c4d5e6f70}}",
    ],
)
async def test_invalid_uuid_in_path_is_422(client, path):
    problem = assert_problem(await client.get(path), 422)
    assert problem["errors"][0]["loc"][0] == "path"


async def test_invalid_cursor_is_422(client):
    assert_problem(await client.get(USERS, params={"cursor": "abc"}), 422)


async def test_patch_rejects_null_for_required_fields_and_empty_bodies(client):
    user = await create_user(client)
    url = f"{USERS}/{user['id']}"

    assert_problem(await client.patch(url, json={"email": None}), 422)
    assert_problem(await client.patch(url, json={}), 422)
    assert_problem(await client.patch(url, json={"version": 2}), 422)
    assert (await client.get(url)).json() == user


async def test_unknown_route_and_method_are_problems(client):
    assert_problem(await client.get("/api/v1/nothing-here"), 404)
    not_allowed = await client.put(f"{USERS}/{uuid.uuid4()}")
    assert_problem(not_allowed, 405)
    assert not_allowed.headers["allow"] == "DELETE, GET, PATCH"


@pytest.mark.parametrize(
    "text",
    ["Robert'); DROP TABLE users;--", "\U0001f680 emoji \u00e9\u00e8 \u4e2d\u6587", "a\tb\nc"],
)
async def test_unusual_strings_are_stored_exactly(client, text):
    user = await create_user(client, full_name=text)

    assert (await client.get(f"{USERS}/{user['id']}")).json()["full_name"] == text


async def test_deeply_nested_json_is_a_4xx(client):
    nested = b'{"email": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    response = await client.post(
        USERS, content=nested, headers={"content-type": "application/json"}
    )

    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


async def test_request_id_is_echoed_or_generated(client):
    echoed = await client.get("/health/db", headers={"X-Request-ID": "abc-123"})
    generated = await client.get("/health/db")
    rejected = await client.get("/health/db", headers={"X-Request-ID": "bad id\nwith newline"})

    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32
    assert rejected.headers["x-request-id"] != "bad id\nwith newline"


async def test_problem_carries_the_request_id(client):
    response = await client.get(f"{USERS}/nope", headers={"X-Request-ID": "trace-me"})

    assert assert_problem(response, 422)["request_id"] == "trace-me"
