"""The security part of the OpenAPI document and of Swagger UI's Authorize button."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from app.core.errors import PROBLEM_MEDIA_TYPE
from app.identity.dependencies import OPENID_CONNECT_SCHEME
from app.identity.permissions import SCOPE_DESCRIPTIONS
from app.identity.settings import IdentitySettings

BEARER_SCHEME = "BearerToken"
_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "The RFC 6750 challenge: `Bearer`, with `error` (`invalid_token`, "
        "`insufficient_scope`), `error_description` and the `scope` needed.",
        "schema": {"type": "string"},
    }
}
_AUTH_RESPONSES = {
    HTTPStatus.UNAUTHORIZED: "No access token (a bare `Bearer` challenge), or one that is "
    "malformed, expired, not yet valid, forged or for another issuer or audience "
    '(`error="invalid_token"`).',
    HTTPStatus.FORBIDDEN: 'The token lacks the scope or role the operation needs (`error="'
    'insufficient_scope"`), or the account is deactivated.',
}


def document_security(openapi: dict[str, Any], settings: IdentitySettings) -> dict[str, Any]:
    """Point the OpenID Connect scheme at the issuer, add a plain bearer scheme, document 401/403.

    Every secured operation accepts either scheme with the same scopes, and documents the
    401 and 403 problem responses with their `WWW-Authenticate` challenge.
    """
    schemes = openapi.setdefault("components", {}).setdefault("securitySchemes", {})
    if OPENID_CONNECT_SCHEME not in schemes:
        return openapi
    schemes[OPENID_CONNECT_SCHEME]["openIdConnectUrl"] = settings.discovery_url
    schemes[BEARER_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Paste an access token from the OpenID Provider.",
    }
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            requirements = operation.get("security")
            if not requirements:
                continue
            scopes = requirements[0].get(OPENID_CONNECT_SCHEME, [])
            operation["security"] = [{OPENID_CONNECT_SCHEME: scopes}, {BEARER_SCHEME: scopes}]
            _document_refusals(operation["responses"])
    return openapi


def _document_refusals(responses: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/Problem"}
    for status, description in _AUTH_RESPONSES.items():
        responses.setdefault(
            str(status.value),
            {
                "description": description,
                "headers": _CHALLENGE,
                "content": {PROBLEM_MEDIA_TYPE: {"schema": problem}},
            },
        )


def swagger_ui_oauth(settings: IdentitySettings) -> dict[str, Any] | None:
    """Swagger UI's OAuth settings: authorization code with PKCE for the docs' public client."""
    if settings.oidc_docs_client_id is None:
        return None
    return {
        "clientId": settings.oidc_docs_client_id,
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": " ".join(["openid", "profile", "email", *SCOPE_DESCRIPTIONS]),
    }
