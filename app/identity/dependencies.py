"""FastAPI dependencies: the bearer token, verified once per request, and the permission checks.

Routes declare what they need with the aliases at the bottom (`TaskReader`, `Admin`, ...);
FastAPI documents the same requirements as the operations' OpenAPI security.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OpenIdConnect
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase

from app.identity.errors import InsufficientScopeError, MissingTokenError
from app.identity.permissions import Scope
from app.identity.settings import IdentitySettings
from app.identity.tokens import Principal, TokenVerifier

OPENID_CONNECT_SCHEME = "OpenIDConnect"
# The scope attribute of the request state the access log reads the caller's subject from.
SUBJECT_STATE = "subject"


class BearerToken(SecurityBase):
    """The request's bearer token (RFC 6750 2.1), documented as the OpenID Connect scheme.

    The discovery URL in the document is the configured issuer's (see `app.identity.openapi`).
    """

    def __init__(self) -> None:
        self.model = OpenIdConnect(
            openIdConnectUrl="/.well-known/openid-configuration",
            description="Access tokens (JWT) from the configured OpenID Provider.",
        )
        self.scheme_name = OPENID_CONNECT_SCHEME

    async def __call__(self, request: Request) -> str | None:
        """Return the token of an `Authorization: Bearer` header, or None without one."""
        authorization = request.headers.get("authorization")
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None


bearer_token = BearerToken()


async def authenticated(
    request: Request,
    security_scopes: SecurityScopes,
    token: Annotated[str | None, Depends(bearer_token)],
) -> Principal:
    """Verify the bearer token and check the scopes the route declares.

    Raises:
        MissingTokenError: No bearer token (401).
        InvalidTokenError: The token is not valid (401).
        ProviderUnavailableError: Its key cannot be looked up now (503).
        InsufficientScopeError: A declared scope is not granted (403).
    """
    if token is None:
        raise MissingTokenError()
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify(token)
    request.scope.setdefault("state", {})[SUBJECT_STATE] = principal.subject
    missing = [scope for scope in security_scopes.scopes if scope not in principal.permissions]
    if missing:
        raise InsufficientScopeError(
            security_scopes.scope_str, f"it needs the {' and '.join(missing)} scope"
        )
    return principal


async def administrator(
    request: Request, principal: Annotated[Principal, Security(authenticated)]
) -> Principal:
    """Require the admin role (settings: `OIDC_ROLES_CLAIM`, `OIDC_ADMIN_ROLE`).

    Raises:
        InsufficientScopeError: The token does not carry the admin role (403).
    """
    if not principal.is_admin:
        settings: IdentitySettings = request.app.state.identity_settings
        role = settings.oidc_admin_role
        raise InsufficientScopeError(role, f"it needs the {role} role")
    return principal


Caller = Annotated[Principal, Security(authenticated)]
TaskReader = Annotated[Principal, Security(authenticated, scopes=[Scope.TASKS_READ])]
TaskWriter = Annotated[Principal, Security(authenticated, scopes=[Scope.TASKS_WRITE])]
Admin = Annotated[Principal, Security(administrator)]
