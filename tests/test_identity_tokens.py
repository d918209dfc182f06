"""Access tokens against a real OpenID Provider: who gets in, and each refusal as RFC 6750 says.

Real tokens come from the provider (client credentials, authorization code with PKCE). The
edge cases are forged with the provider's own signing key, so only the one property under test
is wrong, or with keys and algorithms it never published.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from tests.identity import AUDIENCE, BROWSER_REDIRECT_URI, authorization_code_token, sign_token
from tests.support import assert_problem

ME = "/api/v1/me"
TASKS = "/api/v1/me/tasks"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(provider: Any, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "sub": "forged-but-signed",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "scope": "tasks:read tasks:write",
        "client_id": "user-00",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    encoded = _b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode())
    return ".".join([*encoded, _b64(signature)])


def hs256_with_public_key(provider: Any) -> str:
    """The classic confusion attack: HMAC keyed with the provider's *public* key."""
    public = {name: provider.signing_key()[name] for name in ("kty", "n", "e", "kid")}
    secret = RSAKey.import_key(public).as_pem()
    header = {"alg": "HS256", "typ": "at+jwt", "kid": public["kid"]}
    signing_input = ".".join(
        (_b64(json.dumps(header).encode()), _b64(json.dumps(claims_for(provider)).encode()))
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def foreign_key_token(provider: Any) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAKey.import_key(key).as_dict(private=True) | {"kid": uuid.uuid4().hex}
    return sign_token(jwk, claims_for(provider))


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def challenge(response: Any) -> str:
    value: str = response.headers["www-authenticate"]
    return value


async def test_a_client_credentials_token_is_accepted_as_its_client(client, identities):
    response = await client.get(ME, headers=identities.headers("user-03"))

    assert response.status_code == 200, response.text
    assert response.json()["subject"] == "user-03"
    assert response.json()["issuer"] == identities.provider.issuer


async def test_an_authorization_code_token_with_pkce_is_accepted_as_the_person(
    client, identity_provider
):
    token = authorization_code_token(
        identity_provider, "browser", BROWSER_REDIRECT_URI, "grace", "openid tasks:read"
    )

    me = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    tasks = await client.get(TASKS, headers={"Authorization": f"Bearer {token}"})

    assert me.status_code == 200, me.text
    assert me.json()["subject"] == "grace"
    assert me.json()["email"] == "grace@example.com"
    assert tasks.status_code == 200
    refused = await client.post(
        TASKS, headers={"Authorization": f"Bearer {token}"}, json={"title": "no"}
    )
    assert_problem(refused, 403)
    assert 'scope="tasks:write"' in challenge(refused)


async def test_no_token_gets_a_bare_bearer_challenge(client):
    response = await client.get(TASKS)

    assert_problem(response, 401)
    assert challenge(response) == "Bearer"


async def test_another_authorization_scheme_counts_as_no_token(client):
    response = await client.get(TASKS, headers={"Authorization": "Basic dXNlcjpwYXNz"})

    assert_problem(response, 401)
    assert challenge(response) == "Bearer"


FORGERIES = {
    "malformed": lambda p, real: "not-a-jwt",
    "empty": lambda p, real: "",
    "expired": lambda p, real: sign_token(
        p.signing_key(), claims_for(p, iat=int(time.time()) - 600, exp=int(time.time()) - 120)
    ),
    "not yet valid": lambda p, real: sign_token(
        p.signing_key(), claims_for(p, nbf=int(time.time()) + 600)
    ),
    "issued in the future": lambda p, real: sign_token(
        p.signing_key(), claims_for(p, iat=int(time.time()) + 600)
    ),
    "wrong issuer": lambda p, real: sign_token(
        p.signing_key(), claims_for(p, iss="https://attacker.example")
    ),
    "wrong audience": lambda p, real: sign_token(
        p.signing_key(), claims_for(p, aud="https://another-api.example")
    ),
    "no sub": lambda p, real: sign_token(p.signing_key(), claims_for(p, sub=None)),
    "no exp": lambda p, real: sign_token(p.signing_key(), claims_for(p, exp=None)),
    "not an access token": lambda p, real: sign_token(
        p.signing_key(), claims_for(p), headers={"typ": "JWT"}
    ),
    "alg not a string": lambda p, real: unsigned(
        {"alg": ["RS256"], "typ": "at+jwt", "kid": p.signing_key()["kid"]}, claims_for(p)
    ),
    "alg none": lambda p, real: unsigned(
        {"alg": "none", "typ": "at+jwt", "kid": p.signing_key()["kid"]}, claims_for(p)
    ),
    "HS256 with the public key": lambda p, real: hs256_with_public_key(p),
    "a key never published": lambda p, real: foreign_key_token(p),
    "tampered payload": lambda p, real: tampered(real),
}


REASONS = {
    "malformed": "it is not a signed JWT",
    "empty": "it is not a signed JWT",
    "expired": "it has expired",
    "not yet valid": "it is not valid yet",
    "issued in the future": "it was issued in the future",
    "wrong issuer": "it was issued by another issuer",
    "wrong audience": "it is meant for another audience",
    "no sub": "it lacks the claims sub",
    "no exp": "it lacks the claims exp",
    "not an access token": "it is not an access token (typ at+jwt)",
    # RFC 6750 allows no double quote in error_description: the challenge drops them.
    "alg not a string": "the algorithm ['RS256'] is not accepted",
    "alg none": "the algorithm 'none' is not accepted",
    "HS256 with the public key": "the algorithm 'HS256' is not accepted",
    "a key never published": "it was signed with a key the provider does not publish",
    "tampered payload": "the signature does not match",
}


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_a_bad_token_gets_401_invalid_token_without_an_echo(
    client, identities, identity_provider, forgery
):
    token = FORGERIES[forgery](identity_provider, identities.token("user-04"))

    response = await client.get(TASKS, headers={"Authorization": f"Bearer {token}"})

    body = assert_problem(response, 401)
    assert challenge(response) == (
        f'Bearer error="invalid_token", error_description="{REASONS[forgery]}"'
    )
    if token:
        assert token not in response.text
        assert token not in challenge(response)
    assert body["type"].endswith("/invalid-token")


async def test_a_valid_token_without_the_scope_gets_403_naming_it(client, identities):
    headers = identities.headers("reader", scope="tasks:read")

    listed = await client.get(TASKS, headers=headers)
    created = await client.post(TASKS, headers=headers, json={"title": "not allowed"})

    assert listed.status_code == 200
    assert_problem(created, 403)
    assert challenge(created).startswith('Bearer error="insufficient_scope", scope="tasks:write"')


async def test_a_token_without_any_task_scope_cannot_read_tasks(client, identities):
    headers = identities.headers("reader", scope="")

    response = await client.get(TASKS, headers=headers)
    me = await client.get(ME, headers=headers)

    assert_problem(response, 403)
    assert 'scope="tasks:read"' in challenge(response)
    assert me.status_code == 200


async def test_the_openapi_document_declares_both_schemes_and_each_operations_scopes(
    client, identity_provider
):
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    operations = document["paths"]

    assert schemes["OpenIDConnect"] == {
        "type": "openIdConnect",
        "openIdConnectUrl": f"{identity_provider.issuer}/.well-known/openid-configuration",
        "description": schemes["OpenIDConnect"]["description"],
    }
    assert schemes["BearerToken"]["scheme"] == "bearer"
    assert operations["/api/v1/me/tasks"]["post"]["security"] == [
        {"OpenIDConnect": ["tasks:write"]},
        {"BearerToken": ["tasks:write"]},
    ]
    assert operations["/api/v1/me/tasks"]["get"]["security"][0] == {"OpenIDConnect": ["tasks:read"]}
    for path, item in operations.items():
        for method, operation in item.items():
            secured = path.startswith("/api/v1")
            assert bool(operation.get("security")) == secured, (method, path)
            if secured:
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
                assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


async def test_the_docs_authorize_button_uses_pkce_with_the_docs_client(
    database, identity_settings
):
    from app.core.config import Settings
    from app.main import create_app

    app = create_app(
        Settings(_env_file=None, database_url=database.url),  # type: ignore[call-arg]
        identity_settings.model_copy(update={"oidc_docs_client_id": "groundwork-docs"}),
    )

    assert app.swagger_ui_init_oauth == {
        "clientId": "groundwork-docs",
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": "openid profile email tasks:read tasks:write",
    }


MALFORMED_HEADERS = [
    [],
    "alg",
    None,
    {"alg": {"name": "RS256"}},
    {"alg": "RS256", "kid": 5},
    {"alg": "RS256", "kid": ["a"]},
    {"alg": "RS256", "crit": ["exp"]},
    {"alg": "RS256", "b64": False},
]


@pytest.mark.parametrize(
    "header", MALFORMED_HEADERS, ids=[json.dumps(h) for h in MALFORMED_HEADERS]
)
async def test_a_malformed_header_is_an_invalid_token_never_a_server_error(client, header):
    token = f"{_b64(json.dumps(header).encode())}.{_b64(b'{}')}.{_b64(b'signature')}"

    response = await client.get(TASKS, headers={"Authorization": f"Bearer {token}"})

    assert_problem(response, 401)
    assert challenge(response).startswith('Bearer error="invalid_token"')
