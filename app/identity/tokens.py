"""Access token verification: a JWS from the configured issuer, for this API, still valid.

joserfc does the cryptography. The algorithm must be one the settings allow *and* fit the key
the provider published under the token's `kid`, so a token cannot pick its own check (`none`,
or HS256 "signed" with the provider's public key, are refused before any signature math).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from joserfc.errors import ClaimError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jws import JWSRegistry, extract_compact, validate_compact
from joserfc.jwt import JWTClaimsRegistry

from app.identity.errors import InvalidTokenError, ProviderUnavailableError
from app.identity.keys import KeyFetchError, ProviderKeys
from app.identity.settings import IdentitySettings

# RFC 9068 2.1; media types compare case-insensitively and may carry the application/ prefix.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# Far above any real access token; a larger header is not worth parsing.
MAX_TOKEN_LENGTH = 16_384
# Claims that may carry the granted scopes: `scope` (RFC 9068, a space-separated string),
# `scp` (Entra ID and Okta, a string or a list).
SCOPE_CLAIMS = ("scope", "scp")
# What the users table can hold (app.modules.user.models uses the same limits).
SUBJECT_MAX_LENGTH = 255
ISSUER_MAX_LENGTH = 2048
EMAIL_MAX_LENGTH = 320
FULL_NAME_MAX_LENGTH = 200
CLAIM_PROBLEMS = {
    "iss": "it was issued by another issuer",
    "aud": "it is meant for another audience",
    "nbf": "it is not valid yet",
    "iat": "it was issued in the future",
    "sub": "its subject is not a string",
    "exp": "its expiry is not a time",
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified access token says the caller is, and what it may do.

    Attributes:
        issuer: The token's `iss`.
        subject: The token's `sub`; with `issuer`, the caller's identity.
        permissions: Granted scopes and roles, such as `tasks:read`.
        is_admin: Whether the token carries the admin role.
        email: The `email` claim, when the provider sends one.
        name: The `name` claim, when the provider sends one.
    """

    issuer: str
    subject: str
    permissions: frozenset[str]
    is_admin: bool
    email: str | None = None
    name: str | None = None


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return (item for item in value if isinstance(item, str))
    return ()


def _claim_at(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _profile_text(claims: dict[str, Any], name: str, max_length: int) -> str | None:
    # Profile claims are a convenience: one that the users table cannot hold is left out.
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length or "\x00" in value:
        return None
    return value


class TokenVerifier:
    """Verify bearer tokens against the provider's published keys (one per worker)."""

    def __init__(self, settings: IdentitySettings, keys: ProviderKeys) -> None:
        self._settings = settings
        self._keys = keys
        self._algorithms = frozenset(settings.oidc_algorithms)
        self._registry = JWSRegistry(algorithms=list(settings.oidc_algorithms))
        self._claims = JWTClaimsRegistry(
            leeway=settings.oidc_leeway_seconds,
            iss={"essential": True, "value": settings.oidc_issuer},
            aud={"essential": True, "value": settings.oidc_audience},
            sub={"essential": True},
            exp={"essential": True},
        )

    async def verify(self, token: str) -> Principal:
        """Check the token's signature and claims; return who it names.

        Raises:
            InvalidTokenError: The token is malformed, expired, not yet valid, forged, from
                another issuer or for another audience (401, `invalid_token`).
            ProviderUnavailableError: The token's key is unknown and the provider cannot be
                reached to look for it (503 with `Retry-After`).
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError("it is too long")
        try:
            signed = extract_compact(token.encode("ascii"))
        except (JoseError, ValueError):
            raise InvalidTokenError("it is not a signed JWT") from None
        header = signed.headers()
        if not isinstance(header, dict):
            raise InvalidTokenError("its header is not a JSON object")
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise InvalidTokenError(f"the algorithm {str(algorithm)[:20]!r} is not accepted")
        if self._settings.oidc_require_at_jwt and (
            str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES
        ):
            raise InvalidTokenError('it is not an access token (typ "at+jwt")')
        kid = header.get("kid")
        key = await self._key(kid if isinstance(kid, str) else None)
        if key.alg is not None and key.alg != algorithm:
            raise InvalidTokenError("its algorithm does not match the key's")
        try:
            if not validate_compact(signed, key, registry=self._registry):
                raise InvalidTokenError("the signature does not match")
        except JoseError:
            raise InvalidTokenError("the signature does not match") from None
        return self._principal(self._valid_claims(signed.payload))

    async def _key(self, kid: str | None) -> Any:
        try:
            key = await self._keys.get(kid)
        except KeyFetchError:
            raise ProviderUnavailableError(
                math.ceil(self._keys.seconds_until_next_attempt())
            ) from None
        if key is None:
            raise InvalidTokenError("it was signed with a key the provider does not publish")
        return key

    def _valid_claims(self, payload: bytes | None) -> dict[str, Any]:
        try:
            claims = json.loads(payload or b"")
        except ValueError:
            raise InvalidTokenError("its payload is not JSON") from None
        if not isinstance(claims, dict):
            raise InvalidTokenError("its payload is not a JSON object")
        try:
            self._claims.validate(claims)
        except ExpiredTokenError:
            raise InvalidTokenError("it has expired") from None
        except MissingClaimError as error:
            raise InvalidTokenError(f"it lacks the claims {error.claim}") from None
        except ClaimError as error:
            reason = CLAIM_PROBLEMS.get(error.claim, f"its {error.claim} claim is invalid")
            raise InvalidTokenError(reason) from None
        return claims

    def _principal(self, claims: dict[str, Any]) -> Principal:
        if len(claims["sub"]) > SUBJECT_MAX_LENGTH or "\x00" in claims["sub"]:
            raise InvalidTokenError(
                f"its subject is over {SUBJECT_MAX_LENGTH} characters or has NUL"
            )
        scopes = {scope for name in SCOPE_CLAIMS for scope in _strings(claims.get(name))}
        roles = set(_strings(_claim_at(claims, self._settings.oidc_roles_claim)))
        return Principal(
            issuer=claims["iss"],
            subject=claims["sub"],
            permissions=frozenset(scopes | roles),
            is_admin=self._settings.oidc_admin_role in roles,
            email=_profile_text(claims, "email", EMAIL_MAX_LENGTH),
            name=_profile_text(claims, "name", FULL_NAME_MAX_LENGTH),
        )
