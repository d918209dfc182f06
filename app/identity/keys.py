"""The provider's signing keys: discovered and fetched asynchronously, cached per worker.

Keys are fetched when first needed, refreshed in the background once they are old, and
refreshed at once when a token names an unknown key id, at most once per cooldown (a flood
of made-up key ids costs one fetch). A failed refresh keeps the keys already held, so a
provider outage does not sign everybody out while their tokens' keys are cached.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from app.core.logging import get_logger
from app.identity.settings import IdentitySettings

PublicKey = RSAKey | ECKey | OKPKey
_KEY_TYPES: dict[str, type[PublicKey]] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}

logger = get_logger(__name__)


class KeyFetchError(Exception):
    """Discovery or the JWKS could not be fetched or read."""


def parse_jwks(document: Any) -> dict[str | None, PublicKey]:
    """Return the signature keys of a JWKS document by key id; unusable keys are skipped.

    Raises:
        KeyFetchError: The document is not a JWKS.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyFetchError("the JWKS has no keys list")
    keys: dict[str | None, PublicKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        key_type = _KEY_TYPES.get(str(entry.get("kty")))
        if key_type is None or "d" in entry:  # unknown type, or a private key published by mistake
            continue
        try:
            key = key_type.import_key(entry)
        except (JoseError, ValueError, TypeError) as error:
            logger.warning("jwks_key_skipped", kid=entry.get("kid"), error=type(error).__name__)
            continue
        kid = entry.get("kid")
        keys[kid if isinstance(kid, str) else None] = key
    if not keys:
        raise KeyFetchError("the JWKS has no usable signature key")
    return keys


class ProviderKeys:
    """One worker's cache of the provider's public keys."""

    def __init__(self, settings: IdentitySettings, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        self._jwks_uri = settings.oidc_jwks_url
        self._keys: dict[str | None, PublicKey] = {}
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._last_attempt_failed = False
        self._refresh: asyncio.Task[None] | None = None

    def seconds_until_next_attempt(self) -> float:
        """How long an unknown key id must wait for the next refresh (0 when one may start)."""
        remaining = self._attempted_at + self._settings.oidc_jwks_refresh_cooldown_seconds
        return max(0.0, remaining - time.monotonic())

    async def get(self, kid: str | None) -> PublicKey | None:
        """Return the key with id `kid`, refreshing the cache when the id is unknown.

        A token without `kid` is matched only when the provider publishes a single key.

        Returns:
            The key, or None when the provider does not publish it.

        Raises:
            KeyFetchError: The id is unknown and the provider could not be reached; no
                refresh is tried again before the cooldown ends.
        """
        key = self._lookup(kid)
        if key is not None:
            stale = time.monotonic() - self._fetched_at > self._settings.oidc_jwks_max_age_seconds
            # During an outage the cooldown spaces the background attempts too.
            if stale and self.seconds_until_next_attempt() == 0:
                self._start_refresh()
            return key
        refreshing = self._refresh is not None and not self._refresh.done()
        if refreshing or self.seconds_until_next_attempt() == 0:
            # Shielded: a client that disconnects must not cancel a fetch others wait for.
            await asyncio.shield(self._start_refresh())
            key = self._lookup(kid)
        if key is None and self._last_attempt_failed:
            raise KeyFetchError("the identity provider is unreachable")
        return key

    def _lookup(self, kid: str | None) -> PublicKey | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    def _start_refresh(self) -> asyncio.Task[None]:
        # Concurrent misses share one fetch instead of each starting their own.
        if self._refresh is None or self._refresh.done():
            self._attempted_at = time.monotonic()
            self._refresh = asyncio.ensure_future(self._fetch())
        return self._refresh

    async def _fetch(self) -> None:
        try:
            jwks_uri = self._jwks_uri or await self._discover_jwks_uri()
            keys = parse_jwks(await self._get_json(jwks_uri))
        except KeyFetchError as error:
            self._last_attempt_failed = True
            logger.warning("jwks_refresh_failed", reason=str(error), kept_keys=len(self._keys))
            return
        self._jwks_uri = jwks_uri
        self._keys = keys
        self._fetched_at = time.monotonic()
        self._last_attempt_failed = False
        logger.info("jwks_refreshed", keys=len(keys))

    async def _discover_jwks_uri(self) -> str:
        document = await self._get_json(self._settings.discovery_url)
        # OpenID Connect Discovery 4.3: the document must name exactly the configured issuer.
        if not isinstance(document, dict) or document.get("issuer") != self._settings.oidc_issuer:
            raise KeyFetchError("the discovery document names another issuer than OIDC_ISSUER")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise KeyFetchError("the discovery document has no jwks_uri")
        return jwks_uri

    async def _get_json(self, url: str) -> Any:
        try:
            response = await self._client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()
        except httpx.HTTPStatusError as error:
            raise KeyFetchError(f"{url} answered {error.response.status_code}") from error
        except httpx.HTTPError as error:
            raise KeyFetchError(f"{url} did not answer: {type(error).__name__}") from error
        except ValueError as error:
            raise KeyFetchError(f"{url} did not return JSON") from error

    async def close(self) -> None:
        """Wait for a background refresh to end, so none outlives the worker's HTTP client."""
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)


def identity_http_client(settings: IdentitySettings) -> httpx.AsyncClient:
    """Return an HTTP client for discovery and JWKS: bounded time, no redirects.

    A redirect could lead key fetches away from the provider's origin. Proxy and CA settings
    of the environment (HTTPS_PROXY, SSL_CERT_FILE) apply.
    """
    return httpx.AsyncClient(timeout=settings.oidc_http_timeout_seconds, follow_redirects=False)
