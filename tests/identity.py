"""Getting access tokens from the development OpenID Provider, the way real clients do."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from app.dev.identity_provider import (
    ClientSpec,
    DevIdentityProvider,
    find_node_modules,
    node_executable,
)
from tests.support import running_in_ci

MAX_REDIRECTS = 10
LOGIN_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"')


def require_identity_provider() -> None:
    """Skip loudly (fail under `CI=true`) unless Node.js and oidc-provider are installed."""
    try:
        node_executable()
        find_node_modules()
    except RuntimeError as missing:
        if running_in_ci():
            pytest.fail(f"{missing}; CI must have it", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {missing}")


def token_request(provider: DevIdentityProvider, data: dict[str, str], **options: Any) -> str:
    """POST `data` to the provider's token endpoint; return the access token it issues."""
    token_endpoint = provider.discovery()["token_endpoint"]
    response = httpx.post(token_endpoint, data=data, timeout=10, **options)
    assert response.status_code == httpx.codes.OK, response.text
    access_token: str = response.json()["access_token"]
    return access_token


def client_credentials_token(
    provider: DevIdentityProvider, client_id: str, client_secret: str, scope: str | None = None
) -> str:
    """Return an access token for a confidential client (the client credentials grant).

    Args:
        provider: The running provider.
        client_id: The client.
        client_secret: Its secret (sent with HTTP Basic authentication).
        scope: The scopes to ask for, space separated; None asks for none, and oidc-provider
            then issues a token without a `scope` claim (it does not default to the client's).
    """
    data = {"grant_type": "client_credentials", "resource": provider.audience}
    if scope is not None:
        data["scope"] = scope
    return token_request(provider, data, auth=(client_id, client_secret))


def pkce_pair() -> tuple[str, str]:
    """Return a PKCE code verifier and its S256 code challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _authorization_response(
    client: httpx.Client, response: httpx.Response, redirect_uri: str, login: str
) -> str:
    """Follow `response` through the login page to the redirect to `redirect_uri`."""
    for _ in range(MAX_REDIRECTS):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(redirect_uri):
                return location
            response = client.get(location)
            continue
        assert response.status_code == httpx.codes.OK, response.text
        form = LOGIN_FORM_ACTION.search(response.text)
        assert form is not None, f"no login form at {response.url}:\n{response.text}"
        response = client.post(
            urljoin(str(response.url), html.unescape(form.group(1))),
            data={"prompt": "login", "login": login, "password": "any password"},
        )
    raise AssertionError(f"no redirect to {redirect_uri} after {MAX_REDIRECTS} steps")


def authorization_code_token(
    provider: DevIdentityProvider, client_id: str, redirect_uri: str, login: str, scope: str
) -> str:
    """Log in as `login` through the authorization code flow with PKCE; return the access token.

    The flow is the browser's: the authorization request, the provider's login form
    (devInteractions: any login name, any password), the redirect back with the code (not
    followed), then the code exchange with the PKCE verifier.

    Args:
        provider: The running provider.
        client_id: A public client registered with `redirect_uri`.
        redirect_uri: Where the provider sends the code.
        login: The login name, which becomes the token's `sub`.
        scope: The scopes to ask for, space separated (such as "openid tasks:read").
    """
    metadata = provider.discovery()
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    # oidc-provider refuses a nonce without the openid scope.
    nonce = {"nonce": secrets.token_urlsafe(16)} if "openid" in scope.split() else {}
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        response = client.get(
            metadata["authorization_endpoint"],
            params={
                "client_id": client_id,
                "response_type": "code",
                "redirect_uri": redirect_uri,
                "scope": scope,
                "resource": provider.audience,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": state,
                **nonce,
            },
        )
        location = _authorization_response(client, response, redirect_uri, login)
    query = parse_qs(urlsplit(location).query)
    assert "error" not in query, query
    assert query["state"] == [state], query
    return token_request(
        provider,
        {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": provider.audience,
        },
    )


def sign_token(
    key: dict[str, Any],
    claims: dict[str, Any],
    headers: dict[str, Any] | None = None,
    alg: str = "RS256",
) -> str:
    """Sign `claims` with the private JWK `key` (the provider's own, to forge edge cases).

    The header is `alg`, the key's `kid` and `typ: at+jwt`, updated with `headers`.
    """
    header = {"alg": alg, "typ": "at+jwt", "kid": key["kid"], **(headers or {})}
    return jwt.encode(header, claims, RSAKey.import_key(key), algorithms=[alg])


# The identities of the test suite: confidential clients of the session's provider.
AUDIENCE = "http://groundwork.test"
CLIENT_SECRET = "test-client-secret"
BROWSER_REDIRECT_URI = "http://127.0.0.1/callback"
TASK_SCOPES = "tasks:read tasks:write"
USER_CLIENTS = tuple(f"user-{number:02d}" for number in range(40))
TEST_CLIENTS = (
    *(ClientSpec(client_id, CLIENT_SECRET, TASK_SCOPES) for client_id in USER_CLIENTS),
    ClientSpec("admin", CLIENT_SECRET, TASK_SCOPES, roles=("admin",)),
    ClientSpec("reader", CLIENT_SECRET, TASK_SCOPES),
    ClientSpec(
        "browser",
        None,
        f"openid profile email {TASK_SCOPES}",
        redirect_uris=(BROWSER_REDIRECT_URI,),
    ),
)


class Identities:
    """Access tokens of the test clients, each fetched once from the real provider."""

    def __init__(self, provider: DevIdentityProvider) -> None:
        self.provider = provider
        self._tokens: dict[tuple[str, str], str] = {}

    def token(self, client_id: str = "user-00", scope: str = TASK_SCOPES) -> str:
        """Return an access token of `client_id` with `scope` (client credentials)."""
        if (client_id, scope) not in self._tokens:
            self._tokens[client_id, scope] = client_credentials_token(
                self.provider, client_id, CLIENT_SECRET, scope
            )
        return self._tokens[client_id, scope]

    def headers(self, client_id: str = "user-00", scope: str = TASK_SCOPES) -> dict[str, str]:
        """Return the `Authorization` header of `client_id` with `scope`."""
        return {"Authorization": f"Bearer {self.token(client_id, scope)}"}

    @property
    def admin(self) -> dict[str, str]:
        """The headers of a client with the admin role."""
        return self.headers("admin")
