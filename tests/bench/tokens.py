"""What verifying one access token costs in-process, with the provider's keys already cached.

`TokenVerifier.verify` runs as every API request runs it: its `ProviderKeys` fetched the keys
from the real provider once (discovery, then the JWKS), so each call is signature and claims
checks only; the coroutine never suspends. The comparison is joserfc alone: `jwt.decode` with
the same public key plus the same claims registry, which is the least a verifier can do.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from joserfc import jwt
from joserfc.jwk import RSAKey
from joserfc.jws import extract_compact
from joserfc.jwt import JWTClaimsRegistry

from app.identity.keys import ProviderKeys, identity_http_client
from app.identity.settings import IdentitySettings
from app.identity.tokens import TokenVerifier

NANOSECONDS_PER_MICROSECOND = 1000


@dataclass(frozen=True)
class VerifyTimings:
    """Medians in microseconds over `runs` calls, after `warmup` calls."""

    verify_us: float
    joserfc_us: float
    runs: int
    warmup: int
    algorithm: str


def claims_registry(issuer: str, audience: str, leeway: int = 30) -> JWTClaimsRegistry:
    """The claims checks of an access token: issuer, audience, subject and expiry."""
    return JWTClaimsRegistry(
        leeway=leeway,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        sub={"essential": True},
        exp={"essential": True},
    )


def median_us(call: Callable[[], object], runs: int, warmup: int) -> float:
    """Call `call` `warmup` times, then time `runs` calls one by one; return the median in us."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - started)
    return statistics.median(samples) / NANOSECONDS_PER_MICROSECOND


def measure_verification(
    settings: IdentitySettings, token: str, runs: int, warmup: int
) -> VerifyTimings:
    """Time `TokenVerifier.verify(token)` and a bare joserfc decode and claims check."""
    return asyncio.run(_measure(settings, token, runs, warmup))


async def _measure(settings: IdentitySettings, token: str, runs: int, warmup: int) -> VerifyTimings:
    header = extract_compact(token.encode("ascii")).headers()
    async with identity_http_client(settings) as client:
        keys = ProviderKeys(settings, client)
        key = await keys.get(header.get("kid"))  # fills the cache from the provider
        if not isinstance(key, RSAKey):
            raise RuntimeError(f"the provider published no RSA key {header.get('kid')!r}")
        verifier = TokenVerifier(settings, keys)
        await verifier.verify(token)  # fails loudly if the token is not valid here

        def verify_once() -> None:
            # Driven by hand: with the key cached, verify() finishes without suspending, so
            # this times its own work and not a trip through the event loop's scheduler.
            coroutine = verifier.verify(token)
            try:
                coroutine.send(None)
            except StopIteration:
                return
            coroutine.close()
            raise RuntimeError("TokenVerifier.verify suspended although its key was cached")

        claims = claims_registry(
            settings.oidc_issuer, settings.oidc_audience, settings.oidc_leeway_seconds
        )
        algorithms = list(settings.oidc_algorithms)

        def joserfc_once() -> None:
            claims.validate(jwt.decode(token, key, algorithms=algorithms).claims)

        verify_us = median_us(verify_once, runs, warmup)
        joserfc_us = median_us(joserfc_once, runs, warmup)
        await keys.close()
    return VerifyTimings(
        verify_us=verify_us,
        joserfc_us=joserfc_us,
        runs=runs,
        warmup=warmup,
        algorithm=str(header.get("alg")),
    )
