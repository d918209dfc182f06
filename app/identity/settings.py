"""Settings of the OAuth 2.0 resource server: which provider to trust and how to read tokens."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.config import CommaSeparated, PositiveFloat, read_settings

# Asymmetric algorithms only: an HMAC key would be a secret shared with every client, and
# `none` is no signature at all.
SUPPORTED_ALGORITHMS = frozenset(
    {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
        "Ed25519",
    }
)


class IdentitySettings(BaseSettings):
    """Which OpenID Provider issues the access tokens this API accepts.

    There is no setting that turns authentication off: the issuer and audience are required.
    """

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, case_sensitive=False
    )

    # Exactly as tokens carry it in `iss` (a trailing slash matters); discovery is read from
    # {OIDC_ISSUER}/.well-known/openid-configuration.
    oidc_issuer: str
    # The value this API expects in `aud`, such as its URL or the client id of the API.
    oidc_audience: str = Field(min_length=1)
    # Keys from here instead of the discovery document's `jwks_uri`.
    oidc_jwks_url: str | None = None
    oidc_algorithms: CommaSeparated = ("RS256", "PS256", "ES256", "EdDSA")
    oidc_leeway_seconds: Annotated[int, Field(ge=0, le=300)] = 30
    # RFC 9068 access tokens say `typ: at+jwt`; several providers still send `JWT`.
    oidc_require_at_jwt: bool = False
    # A dotted path to the list of roles in the token: `roles`, Keycloak `realm_access.roles`.
    oidc_roles_claim: str = Field(default="roles", min_length=1)
    oidc_admin_role: str = Field(default="admin", min_length=1)
    # An unknown key id refreshes the keys at most once per cooldown.
    oidc_jwks_refresh_cooldown_seconds: PositiveFloat = 60.0
    # Keys are refreshed in the background once they are this old (rotation without a miss).
    oidc_jwks_max_age_seconds: PositiveFloat = 3600.0
    oidc_http_timeout_seconds: PositiveFloat = 5.0
    # The public client (authorization code + PKCE) the Authorize button of /docs uses.
    oidc_docs_client_id: str | None = None

    @field_validator("oidc_algorithms")
    @classmethod
    def _check_algorithms(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        if not algorithms:
            raise ValueError("name at least one algorithm")
        unsupported = sorted(set(algorithms) - SUPPORTED_ALGORITHMS)
        if unsupported:
            allowed = ", ".join(sorted(SUPPORTED_ALGORITHMS))
            raise ValueError(f"{', '.join(unsupported)} not allowed; choose from {allowed}")
        return algorithms

    @field_validator("oidc_issuer", "oidc_jwks_url")
    @classmethod
    def _check_url(cls, url: str | None) -> str | None:
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError("must be an http(s) URL such as https://login.example.com")
        return url

    @property
    def discovery_url(self) -> str:
        """Where the provider's OpenID Connect discovery document is (OIDC Discovery 4)."""
        return self.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"


@lru_cache
def get_identity_settings() -> IdentitySettings:
    """Read and validate the identity settings once per process.

    Raises:
        SettingsError: A setting is missing or invalid (it exits with one clear line).
    """
    return read_settings(IdentitySettings)
