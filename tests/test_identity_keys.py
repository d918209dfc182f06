"""The provider's keys as a worker caches them: rotation, a flood of unknown key ids, an outage.

Each test runs its own provider (they rotate and stop it) and its own in-process app, and
counts the JWKS requests the provider really received.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from app.core.config import Settings
from app.dev.embedded_postgres import free_port
from app.dev.identity_provider import DevIdentityProvider
from app.identity.keys import KeyFetchError, parse_jwks
from app.identity.settings import IdentitySettings
from app.main import create_app
from tests.identity import (
    AUDIENCE,
    CLIENT_SECRET,
    TASK_SCOPES,
    TEST_CLIENTS,
    client_credentials_token,
    require_identity_provider,
    sign_token,
)
from tests.support import DatabaseInfo, assert_problem

COOLDOWN_SECONDS = 1.0
TASKS = "/api/v1/me/tasks"


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[DevIdentityProvider]:
    require_identity_provider()
    running = DevIdentityProvider(tmp_path / "oidc", free_port(), AUDIENCE, TEST_CLIENTS)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@asynccontextmanager
async def api(
    database: DatabaseInfo,
    provider: DevIdentityProvider,
    cooldown: float = COOLDOWN_SECONDS,
    max_age: float = 3600,
) -> AsyncGenerator[httpx.AsyncClient, None]:
    """An app of its own (a fresh key cache) trusting `provider`, as one worker would."""
    app = create_app(
        Settings(_env_file=None, database_url=database.url, db_pool_size=2),  # type: ignore[call-arg]
        IdentitySettings(
            _env_file=None,  # type: ignore[call-arg]
            oidc_issuer=provider.issuer,
            oidc_audience=AUDIENCE,
            oidc_jwks_refresh_cooldown_seconds=cooldown,
            oidc_jwks_max_age_seconds=max_age,
        ),
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_of(provider: DevIdentityProvider, client_id: str = "user-00") -> str:
    return client_credentials_token(provider, client_id, CLIENT_SECRET, TASK_SCOPES)


def unknown_kid_token(provider: DevIdentityProvider) -> str:
    """A well-formed token for this API, signed by a key with an id nobody published."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAKey.import_key(key).as_dict(private=True) | {"kid": uuid.uuid4().hex}
    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 300}
    return sign_token(jwk, claims)


async def wait_past_cooldown() -> None:
    await asyncio.sleep(COOLDOWN_SECONDS + 0.2)


async def test_keys_are_fetched_once_and_reused(database, provider):
    async with api(database, provider) as client:
        for client_id in ("user-00", "user-01", "user-02"):
            response = await client.get(TASKS, headers=bearer(token_of(provider, client_id)))
            assert response.status_code == 200, response.text

    assert provider.request_count("/jwks") == 1


async def test_after_rotation_new_tokens_work_after_one_refresh_and_old_ones_still_do(
    database, provider
):
    old_token = token_of(provider)
    async with api(database, provider) as client:
        assert (await client.get(TASKS, headers=bearer(old_token))).status_code == 200
        old_kid = provider.signing_key()["kid"]

        provider.rotate_keys()
        new_token = token_of(provider)
        await wait_past_cooldown()
        new = await client.get(TASKS, headers=bearer(new_token))
        again = await client.get(TASKS, headers=bearer(new_token))
        old = await client.get(TASKS, headers=bearer(old_token))

    assert provider.signing_key()["kid"] != old_kid
    assert new.status_code == again.status_code == old.status_code == 200
    assert provider.request_count("/jwks") == 2


async def test_a_flood_of_unknown_key_ids_costs_at_most_one_fetch_per_cooldown(database, provider):
    flood = [unknown_kid_token(provider) for _ in range(5)] * 20
    async with api(database, provider, cooldown=60) as client:
        assert (await client.get(TASKS, headers=bearer(token_of(provider)))).status_code == 200
        fetched_before = provider.request_count("/jwks")

        responses = await asyncio.gather(
            *(client.get(TASKS, headers=bearer(token)) for token in flood)
        )

    assert fetched_before == 1
    assert {response.status_code for response in responses} == {401}
    assert provider.request_count("/jwks") - fetched_before <= 1


async def test_concurrent_first_requests_share_one_fetch(database, provider):
    tokens = [token_of(provider, f"user-{number:02d}") for number in range(10)]
    async with api(database, provider) as client:
        responses = await asyncio.gather(
            *(client.get(TASKS, headers=bearer(token)) for token in tokens)
        )

    assert [response.status_code for response in responses] == [200] * 10
    assert provider.request_count("/jwks") == 1


async def test_a_provider_outage_keeps_cached_keys_and_recovers_without_a_restart(
    database, provider
):
    token = token_of(provider)
    async with api(database, provider) as client:
        assert (await client.get(TASKS, headers=bearer(token))).status_code == 200

        provider.stop()
        await wait_past_cooldown()
        cached = await client.get(TASKS, headers=bearer(token))
        unknown = await client.get(TASKS, headers=bearer(unknown_kid_token(provider)))
        ready = await client.get("/health/db")

        provider.rotate_keys()  # the provider comes back signing with a key never seen
        provider.start()
        rotated = token_of(provider)
        during_cooldown = await client.get(TASKS, headers=bearer(rotated))
        await wait_past_cooldown()
        recovered = await client.get(TASKS, headers=bearer(rotated))

    assert cached.status_code == 200
    assert_problem(unknown, 503)
    assert int(unknown.headers["retry-after"]) >= 1
    assert "www-authenticate" not in unknown.headers
    assert ready.status_code == 200, "readiness must not depend on the identity provider"
    assert during_cooldown.status_code == 503
    assert recovered.status_code == 200, recovered.text


async def test_old_keys_are_refreshed_once_in_the_background_while_still_serving(
    database, provider
):
    token = token_of(provider)
    async with api(database, provider, max_age=0.2) as client:
        assert (await client.get(TASKS, headers=bearer(token))).status_code == 200
        await wait_past_cooldown()
        stale = await asyncio.gather(*(client.get(TASKS, headers=bearer(token)) for _ in range(20)))
        deadline = time.monotonic() + 5
        # The fetch runs in the background and lands in another process's log: poll it.
        while provider.request_count("/jwks") < 2 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    assert {response.status_code for response in stale} == {200}
    assert provider.request_count("/jwks") == 2


def test_a_jwks_without_a_usable_key_is_a_failed_fetch_not_an_empty_cache():
    with pytest.raises(KeyFetchError, match="no usable"):
        parse_jwks({"keys": [{"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA", "use": "enc"}]})
