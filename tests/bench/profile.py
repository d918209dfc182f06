"""`make profile`: what one request costs in-process, per endpoint, and where the time goes.

The same setup as `make bench` (the development OpenID Provider, a seeded PostgreSQL 18 with
the two roles, a token per caller), but no HTTP server and no load generator: the application
from `create_app()` is called over ASGI in this process (on uvloop, as uvicorn runs it), one
request after another, so the CPU time per request (the least of three passes) is the
application's alone: routing, middleware, token verification, the data layer, serialization,
and this loop's few microseconds. With PROFILE_TOP > 0 each endpoint is also run under
cProfile and its most expensive functions are printed.

Settings (environment): PROFILE_REQUESTS (timed requests per endpoint, 2000), PROFILE_TOP
(functions to print per endpoint, 0), and the BENCH_SEED_* and BENCH_CALLERS of `make bench`.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import uvloop

from app.core.config import get_settings
from app.identity.settings import IdentitySettings, get_identity_settings
from tests.bench.load import Request
from tests.bench.run import (
    AUDIENCE,
    BenchConfig,
    caller_tokens,
    identity_provider,
    seeded_database,
    workloads,
)

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
WARMUP_REQUESTS = 200
# The least of several passes: other work on the machine only ever adds CPU time.
PASSES = 3
# GET /health is measured too: it is the floor (routing and middleware, no database).
SKIPPED_WORKLOADS = {"health_db"}


async def call(app: ASGIApp, request: Request) -> int:
    """Send one request through the ASGI app and return its status."""
    path, _, query = request.path.partition("?")
    body = b"" if request.body is None else json.dumps(request.body).encode()
    headers = [(b"host", b"profile"), (b"content-length", str(len(body)).encode())]
    if request.body is not None:
        headers.append((b"content-type", b"application/json"))
    headers.extend(
        (name.lower().encode(), value.encode()) for name, value in request.headers.items()
    )
    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    status = 0
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run_requests(app: ASGIApp, requests: tuple[Request, ...], count: int) -> None:
    """Send `count` requests, cycling through `requests`; fail on any error status."""
    for number in range(count):
        request = requests[number % len(requests)]
        status = await call(app, request)
        if status >= 400:
            raise RuntimeError(f"{request.method} {request.path} answered {status}")


async def cpu_per_request(app: ASGIApp, requests: tuple[Request, ...], count: int) -> float:
    """CPU microseconds per request over `count` requests."""
    started = time.process_time()
    await run_requests(app, requests, count)
    return (time.process_time() - started) / count * 1e6


async def profile(config: BenchConfig, requests_per_endpoint: int, top: int) -> None:
    """Drive every endpoint in-process and print CPU per request (and the profile)."""
    from app.main import create_app

    with ExitStack() as cleanup:
        scratch = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="gw-profile-")))
        provider = cleanup.enter_context(identity_provider(scratch / "oidc", config.callers))
        tokens = caller_tokens(provider)
        database, data, _ = seeded_database(cleanup, scratch / "postgres", config, provider.issuer)
        os.environ.update(
            DATABASE_URL=database.runtime_url,
            OIDC_ISSUER=provider.issuer,
            OIDC_AUDIENCE=AUDIENCE,
            LOG_LEVEL="WARNING",
            ENV="prod",
        )
        get_settings.cache_clear()
        get_identity_settings.cache_clear()
        IdentitySettings()  # a bad setting fails here, before the app starts
        app = create_app()
        async with app.router.lifespan_context(app):
            print(f"{'endpoint':<34} {'CPU per request':>16}")
            for workload in workloads(data, tokens):
                if workload.name in SKIPPED_WORKLOADS:
                    continue
                requests = workload.requests_of("app")
                await run_requests(app, requests, WARMUP_REQUESTS)
                cpu_us = min(
                    [
                        await cpu_per_request(app, requests, requests_per_endpoint)
                        for _ in range(PASSES)
                    ]
                )
                print(f"{workload.title:<34} {cpu_us:>13.0f} us", flush=True)
                if top > 0:
                    profiler = cProfile.Profile(time.process_time)
                    profiler.enable()
                    await run_requests(app, requests, requests_per_endpoint)
                    profiler.disable()
                    report = io.StringIO()
                    stats = pstats.Stats(profiler, stream=report)
                    stats.sort_stats("tottime").print_stats(top)
                    print(report.getvalue())
                    print_breakdown(stats, requests_per_endpoint)


PACKAGES = (
    ("sqlalchemy", "/sqlalchemy/"),
    ("psycopg", "/psycopg"),
    ("greenlet", "greenlet"),
    ("fastapi", "/fastapi/"),
    ("starlette", "/starlette/"),
    ("pydantic", "pydantic"),
    ("prometheus", "prometheus"),
    ("joserfc/crypto", "joserfc"),
    ("joserfc/crypto", "cryptography"),
    ("structlog", "structlog"),
    ("asyncio", "/asyncio/"),
    ("app", "/app/"),
)


def print_breakdown(stats: pstats.Stats, requests: int) -> None:
    """Print the profile's own time summed by package, in microseconds per request."""
    totals: dict[str, float] = {}
    for function, timing in stats.get_stats_profile().func_profiles.items():
        where = f"{timing.file_name}:{function}"
        name = next((label for label, part in PACKAGES if part in where), "other")
        totals[name] = totals.get(name, 0.0) + timing.tottime
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"    {name:<16} {seconds / requests * 1e6:>7.0f} us")


def main() -> None:
    """Run the in-process profile with settings from the environment."""
    config = BenchConfig.from_environment()
    requests = int(os.environ.get("PROFILE_REQUESTS", "2000"))
    top = int(os.environ.get("PROFILE_TOP", "0"))
    uvloop.run(profile(config, requests, top))


if __name__ == "__main__":
    main()
