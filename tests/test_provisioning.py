"""Just-in-time provisioning: one row per identity, kept fresh without a write per request."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from app.core.config import LogFormat, Settings
from app.core.logging import configure_logging
from app.main import create_app
from tests.identity import AUDIENCE, sign_token

ME = "/api/v1/me"


def person_token(provider, subject: str, **claims: object) -> dict[str, str]:
    """A user token as the provider would sign it, with the profile claims given."""
    now = int(time.time())
    payload = {
        "iss": provider.issuer,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": now,
        "exp": now + 300,
    }
    token = sign_token(provider.signing_key(), payload | claims)
    return {"Authorization": f"Bearer {token}"}


async def test_the_first_request_provisions_from_the_claims_and_later_ones_write_nothing(
    client, identity_provider
):
    headers = person_token(identity_provider, "mary", email="mary@example.com", name="Mary S")

    first = (await client.get(ME, headers=headers)).json()
    second = (await client.get(ME, headers=headers)).json()

    assert (first["email"], first["full_name"], first["is_active"]) == (
        "mary@example.com",
        "Mary S",
        True,
    )
    assert second == first, "an unchanged identity must not be written again"


async def test_a_new_email_from_the_provider_is_kept_and_a_chosen_name_is_not_overwritten(
    client, identity_provider
):
    old = person_token(identity_provider, "ann", email="ann@old.example", name="Ann")
    created = (await client.get(ME, headers=old)).json()
    renamed = await client.patch(ME, headers=old, json={"full_name": "Ann the Great"})

    new = person_token(identity_provider, "ann", email="ann@new.example", name="Ann")
    refreshed = (await client.get(ME, headers=new)).json()

    assert renamed.status_code == 200, renamed.text
    assert refreshed["id"] == created["id"]
    assert refreshed["email"] == "ann@new.example"
    assert refreshed["full_name"] == "Ann the Great"
    assert refreshed["version"] == renamed.json()["version"] + 1


async def test_concurrent_first_requests_of_one_identity_make_one_user(client, identity_provider):
    headers = person_token(identity_provider, "racer", email="racer@example.com")

    responses = await asyncio.gather(*(client.get(ME, headers=headers) for _ in range(20)))

    assert {response.status_code for response in responses} == {200}
    assert len({response.json()["id"] for response in responses}) == 1


async def test_profile_claims_the_table_cannot_hold_are_left_out(client, identity_provider):
    headers = person_token(identity_provider, "long", email="x" * 400 + "@example.com", name="N")

    response = await client.get(ME, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["email"] is None
    assert response.json()["full_name"] == "N"


async def test_a_subject_too_long_to_store_is_an_invalid_token(client, identity_provider):
    response = await client.get(ME, headers=person_token(identity_provider, "s" * 256))

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def startup_events(database_url: str, identity_settings, capsys) -> list[str]:
    settings = Settings(_env_file=None, database_url=database_url, env="prod")  # type: ignore[call-arg]
    app = create_app(settings, identity_settings)
    try:
        async with app.router.lifespan_context(app):
            pass
        return [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    finally:
        configure_logging("INFO", LogFormat.CONSOLE)


async def test_a_server_whose_role_owns_the_tables_warns_at_startup(
    database, identity_settings, capsys
):
    events = await startup_events(database.owner_url, identity_settings, capsys)

    assert "database_role_owns_tables" in events
    assert "database_role_bypasses_rls" not in events


async def test_the_runtime_role_does_not_warn(database, identity_settings, capsys):
    events = await startup_events(database.url, identity_settings, capsys)

    assert "database_connected" in events
    assert "database_role_owns_tables" not in events


async def test_an_unauthenticated_request_never_reaches_the_database(database, identity_settings):
    # The pool is sized 1 and held by another transaction: a 401 must not wait for it.
    settings = Settings(_env_file=None, database_url=database.url, db_pool_size=1)  # type: ignore[call-arg]
    app = create_app(settings, identity_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://t") as client,
            app.state.database.single_statement(),
        ):
            response = await asyncio.wait_for(client.get("/api/v1/me/tasks"), timeout=2)

    assert response.status_code == 401
