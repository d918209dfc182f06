"""User endpoints: your own profile at /api/v1/me, every user at /api/v1/users for admins only.

Real tokens from the test OpenID Provider, a real PostgreSQL under row-level security.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from tests.identity import BROWSER_REDIRECT_URI, authorization_code_token
from tests.support import assert_problem, create_task, create_user

ME = "/api/v1/me"
USERS = "/api/v1/users"
BROWSER_SCOPES = "openid profile email tasks:read tasks:write"


@pytest.fixture
def ada(identities):
    return identities.headers("user-00")


@pytest.fixture
def admin(identities):
    return identities.admin


def count_rows(database, table: str) -> int:
    with psycopg.connect(database.admin_url) as connection:
        row = connection.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
    assert row is not None
    return int(row[0])


# --- /api/v1/me -------------------------------------------------------------------------------


async def test_the_first_request_provisions_the_caller_once(
    client, ada, identity_provider, database
):
    first = await client.get(ME, headers=ada)
    again = await client.get(ME, headers=ada)

    assert first.status_code == 200
    me = first.json()
    assert uuid.UUID(me["id"]).version == 7
    assert me | {"id": None, "created_at": None, "updated_at": None} == {
        "id": None,
        "issuer": identity_provider.issuer,
        "subject": "user-00",
        "email": None,
        "full_name": None,
        "is_active": True,
        "version": 1,
        "created_at": None,
        "updated_at": None,
    }
    assert first.headers["etag"] == '"1"'
    assert again.json() == me
    assert count_rows(database, "users") == 1


async def test_update_me_changes_the_full_name(client, ada):
    me = (await client.get(ME, headers=ada)).json()

    response = await client.patch(ME, json={"full_name": "Ada King"}, headers=ada)

    assert response.status_code == 200
    updated = response.json()
    assert (updated["id"], updated["full_name"], updated["version"]) == (me["id"], "Ada King", 2)
    assert response.headers["etag"] == '"2"'
    assert updated["updated_at"] > me["updated_at"]
    assert (await client.get(ME, headers=ada)).json() == updated


@pytest.mark.parametrize(
    "body",
    [
        {"email": "ada@evil.example.com"},
        {"is_active": False},
        {"subject": "someone-else"},
        {"full_name": "Ada", "email": "ada@evil.example.com"},
        {},
    ],
)
async def test_update_me_accepts_only_the_full_name(client, ada, body):
    before = (await client.get(ME, headers=ada)).json()

    assert_problem(await client.patch(ME, json=body, headers=ada), 422)
    assert (await client.get(ME, headers=ada)).json() == before


async def test_me_needs_a_token_but_no_scope(client, identities):
    unscoped = identities.headers("reader", scope="")

    assert_problem(await client.get(ME), 401)
    assert (await client.get(ME, headers=unscoped)).json()["subject"] == "reader"
    assert (await client.patch(ME, json={"full_name": "R"}, headers=unscoped)).status_code == 200


# --- Signing in through a browser (authorization code + PKCE) -------------------------------


async def test_a_browser_login_gives_a_token_me_accepts_with_the_profile_claims(
    client, identity_provider
):
    token = authorization_code_token(
        identity_provider, "browser", BROWSER_REDIRECT_URI, "ada", BROWSER_SCOPES
    )
    headers = {"Authorization": f"Bearer {token}"}

    me = (await client.get(ME, headers=headers)).json()
    task = await create_task(client, headers, title="from the browser")

    assert (me["issuer"], me["subject"]) == (identity_provider.issuer, "ada")
    assert (me["email"], me["full_name"]) == ("ada@example.com", "ada")
    assert task["user_id"] == me["id"]
    assert_problem(await client.get(USERS, headers=headers), 403)


async def test_a_chosen_name_outlives_the_next_login(client, identity_provider):
    def login() -> dict[str, str]:
        token = authorization_code_token(
            identity_provider, "browser", BROWSER_REDIRECT_URI, "grace", BROWSER_SCOPES
        )
        return {"Authorization": f"Bearer {token}"}

    await client.patch(ME, json={"full_name": "Grace Hopper"}, headers=login())

    assert (await client.get(ME, headers=login())).json()["full_name"] == "Grace Hopper"


async def test_logging_in_as_admin_through_the_browser_gets_the_admin_role(
    client, identity_provider
):
    token = authorization_code_token(
        identity_provider, "browser", BROWSER_REDIRECT_URI, "admin", BROWSER_SCOPES
    )

    response = await client.get(USERS, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert [user["subject"] for user in response.json()["items"]] == ["admin"]


# --- /api/v1/users: admins only ---------------------------------------------------------------


async def test_create_then_read_back(client, admin, identity_provider):
    created = await client.post(
        USERS,
        json={"subject": "ada", "email": "ada@example.com", "full_name": "Ada"},
        headers=admin,
    )

    assert created.status_code == 201
    user = created.json()
    assert created.headers["location"] == f"{USERS}/{user['id']}"
    assert uuid.UUID(user["id"]).version == 7
    assert user | {"id": None, "created_at": None, "updated_at": None} == {
        "id": None,
        "issuer": identity_provider.issuer,
        "subject": "ada",
        "email": "ada@example.com",
        "full_name": "Ada",
        "is_active": True,
        "version": 1,
        "created_at": None,
        "updated_at": None,
    }
    assert created.headers["etag"] == '"1"'
    fetched = await client.get(f"{USERS}/{user['id']}", headers=admin)
    assert fetched.status_code == 200
    assert fetched.json() == user
    assert fetched.headers["etag"] == '"1"'


async def test_a_user_of_another_issuer_can_be_provisioned(client, admin):
    other = "https://login.other.example.com"

    user = await create_user(client, admin, "ada", issuer=other)

    assert (user["issuer"], user["subject"]) == (other, "ada")


async def test_issuer_and_subject_are_unique_not_the_email(client, admin):
    await create_user(client, admin, "ada", email="ada@example.com")
    await create_user(client, admin, "ada-work", email="ada@example.com")
    await create_user(client, admin, "ada", issuer="https://login.other.example.com")

    duplicate = await client.post(USERS, json={"subject": "ada"}, headers=admin)

    body = assert_problem(duplicate, 409)
    assert body["detail"] == "a user with this issuer and subject already exists"
    subjects = [
        user["subject"] for user in (await client.get(USERS, headers=admin)).json()["items"]
    ]
    assert sorted(subjects) == ["ada", "ada", "ada-work", "admin"]


async def test_a_provisioned_user_is_found_on_their_first_request_not_duplicated(
    client, admin, identities, database
):
    provisioned = await create_user(client, admin, "user-05", full_name="Five")

    me = (await client.get(ME, headers=identities.headers("user-05"))).json()

    assert me == provisioned
    assert count_rows(database, "users") == 2  # the admin and user-05


async def test_update_changes_only_the_fields_sent(client, admin):
    user = await create_user(client, admin)

    response = await client.patch(
        f"{USERS}/{user['id']}", json={"full_name": "Ada King"}, headers=admin
    )

    assert response.status_code == 200
    updated = response.json()
    assert updated["full_name"] == "Ada King"
    assert (updated["email"], updated["subject"]) == (user["email"], user["subject"])
    assert updated["version"] == 2
    assert response.headers["etag"] == '"2"'
    assert updated["updated_at"] > user["updated_at"]


async def test_an_admin_may_clear_the_email_and_name(client, admin):
    user = await create_user(client, admin)

    response = await client.patch(
        f"{USERS}/{user['id']}", json={"email": None, "full_name": None}, headers=admin
    )

    assert (response.json()["email"], response.json()["full_name"]) == (None, None)


@pytest.mark.parametrize("own", [True, False], ids=["PATCH /me", "PATCH /users/{id}"])
async def test_a_stale_if_match_is_412_and_changes_nothing(client, ada, admin, own):
    if own:
        url, headers = ME, ada
    else:
        url, headers = f"{USERS}/{(await create_user(client, admin))['id']}", admin
    etag = (await client.get(url, headers=headers)).headers["etag"]
    conditional = {**headers, "If-Match": etag}
    first = await client.patch(url, json={"full_name": "First"}, headers=conditional)
    assert first.status_code == 200

    stale = await client.patch(url, json={"full_name": "Second"}, headers=conditional)

    body = assert_problem(stale, 412)
    assert body["type"].endswith("/precondition-failed")
    assert (
        body["detail"] == "the user changed since the version in If-Match; read it again and retry"
    )
    assert (await client.get(url, headers=headers)).json()["full_name"] == "First"


@pytest.mark.parametrize("if_match", ['"1"', '"7", "1"', "*", ' "1" '])
async def test_if_match_accepts_the_current_tag_among_others_or_a_star(client, admin, if_match):
    user = await create_user(client, admin)

    response = await client.patch(
        f"{USERS}/{user['id']}", json={"is_active": False}, headers={**admin, "If-Match": if_match}
    )

    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'


@pytest.mark.parametrize("if_match", ['W/"1"', "1", '"01"', '"2"', "", "garbage", '"99999999999"'])
async def test_if_match_without_the_current_strong_tag_is_412(client, admin, if_match):
    user = await create_user(client, admin)
    url = f"{USERS}/{user['id']}"

    response = await client.patch(
        url, json={"is_active": False}, headers={**admin, "If-Match": if_match}
    )

    assert_problem(response, 412)
    assert (await client.get(url, headers=admin)).json() == user


async def test_if_match_on_a_missing_user_is_404(client, admin):
    response = await client.patch(
        f"{USERS}/{uuid.uuid4()}", json={"full_name": "X"}, headers={**admin, "If-Match": '"1"'}
    )

    assert_problem(response, 404)


async def test_without_if_match_the_last_write_wins(client, admin):
    user = await create_user(client, admin)
    url = f"{USERS}/{user['id']}"
    await client.patch(url, json={"full_name": "First"}, headers=admin)

    response = await client.patch(url, json={"full_name": "Second"}, headers=admin)

    assert response.status_code == 200
    assert response.json()["version"] == 3


async def test_a_conditional_delete_of_a_changed_user_is_412(client, admin):
    user = await create_user(client, admin)
    url = f"{USERS}/{user['id']}"
    await client.patch(url, json={"full_name": "Changed"}, headers=admin)

    stale = await client.delete(url, headers={**admin, "If-Match": '"1"'})
    current = await client.delete(url, headers={**admin, "If-Match": '"2"'})

    assert_problem(stale, 412)
    assert current.status_code == 204
    assert_problem(await client.get(url, headers=admin), 404)


async def test_a_deactivated_user_is_refused_until_reactivated(client, admin, identities):
    caller = identities.headers("user-03")
    me = (await client.get(ME, headers=caller)).json()
    url = f"{USERS}/{me['id']}"

    deactivated = await client.patch(url, json={"is_active": False}, headers=admin)
    refused = [
        await client.get(ME, headers=caller),
        await client.patch(ME, json={"full_name": "Still me"}, headers=caller),
        await client.get("/api/v1/me/tasks", headers=caller),
        await client.post("/api/v1/me/tasks", json={"title": "x"}, headers=caller),
    ]
    await client.patch(url, json={"is_active": True}, headers=admin)
    again = await client.get(ME, headers=caller)
    tasks = await client.get("/api/v1/me/tasks", headers=caller)

    assert deactivated.json()["is_active"] is False
    for response in refused:
        body = assert_problem(response, 403)
        assert body["type"].endswith("/account-deactivated")
    assert again.status_code == 200
    # The refused writes did not happen: the refusal comes before their statements run.
    assert again.json()["full_name"] is None
    assert tasks.json()["items"] == []


async def test_a_user_provisioned_inactive_is_refused_from_the_first_request(
    client, admin, identities, database
):
    await create_user(client, admin, "user-04", is_active=False)

    response = await client.get(ME, headers=identities.headers("user-04"))

    assert assert_problem(response, 403)["type"].endswith("/account-deactivated")
    assert count_rows(database, "users") == 2


async def test_delete_removes_the_user_and_their_tasks(client, admin, identities, database):
    caller = identities.headers("user-02")
    for title in ("a", "b"):
        await create_task(client, caller, title=title)
    me = (await client.get(ME, headers=caller)).json()
    url = f"{USERS}/{me['id']}"

    deleted = await client.delete(url, headers=admin)

    assert deleted.status_code == 204
    assert count_rows(database, "tasks") == 0
    assert_problem(await client.get(url, headers=admin), 404)
    assert_problem(await client.delete(url, headers=admin), 404)
    reprovisioned = (await client.get(ME, headers=caller)).json()
    assert reprovisioned["id"] != me["id"]
    assert (await client.get("/api/v1/me/tasks", headers=caller)).json()["items"] == []


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
async def test_unknown_user_is_404(client, admin, method):
    missing = uuid.uuid4()
    kwargs = {"json": {"full_name": "X"}} if method == "patch" else {}

    response = await getattr(client, method)(f"{USERS}/{missing}", headers=admin, **kwargs)

    body = assert_problem(response, 404)
    assert body["detail"] == f"user {missing} does not exist"
    assert body["instance"] == f"{USERS}/{missing}"


async def test_list_pages_through_every_user_once_in_creation_order(client, admin):
    subjects = [f"user{number:02d}" for number in range(7)]
    for subject in subjects:
        await create_user(client, admin, subject)

    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(USERS, params=params, headers=admin)).json()
        seen += [user["subject"] for user in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == ["admin", *subjects]


async def test_a_full_last_page_has_no_next_cursor(client, admin):
    await create_user(client, admin, "ada")

    page = (await client.get(USERS, params={"limit": 2}, headers=admin)).json()

    assert len(page["items"]) == 2
    assert page["next_cursor"] is None


@pytest.mark.parametrize("limit", [0, 101, -1, "ten"])
async def test_page_size_is_bounded(client, admin, limit):
    assert_problem(await client.get(USERS, params={"limit": limit}, headers=admin), 422)


# --- /api/v1/users refuses everyone else ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "item", "body"),
    [
        ("GET", False, None),
        ("POST", False, {"subject": "user-09"}),
        ("GET", True, None),
        ("PATCH", True, {"is_active": False}),
        ("DELETE", True, None),
    ],
)
async def test_a_non_admin_gets_403_insufficient_scope_on_every_users_operation(
    client, admin, ada, method, item, body
):
    target = (await client.get(ME, headers=ada)).json()
    path = f"{USERS}/{target['id']}" if item else USERS

    response = await client.request(method, path, json=body, headers=ada)

    problem = assert_problem(response, 403)
    assert problem["type"].endswith("/insufficient-scope")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_scope"')
    assert 'scope="admin"' in challenge
    listed = (await client.get(USERS, headers=admin)).json()["items"]
    assert [user for user in listed if user["subject"] != "admin"] == [target]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_users_need_a_token(client, method):
    response = await client.request(
        method, USERS, json={"subject": "x"} if method == "POST" else None
    )

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
