"""Prometheus metrics that stay correct under gunicorn's several worker processes.

With `PROMETHEUS_MULTIPROC_DIR` set, every worker writes its samples to files there and
`/metrics` aggregates all of them, so each scrape sees the whole process group.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge
from prometheus_fastapi_instrumentator import Instrumentator, metrics
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.config import Settings
from app.db.pool_metrics import POOL_CAPACITY, POOL_GAUGES

UNMEASURED_PATHS = ["/metrics", "/health", "/health/db"]

# Fine enough for latency objectives between 10 ms and 5 s; every bucket is a series per
# route, method and status, so the list stays short.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS_IN_PROGRESS = Gauge(
    "http_requests_inprogress",
    "HTTP requests being served right now.",
    ["method"],
    multiprocess_mode="livesum",
    registry=None,
)

BUILD_INFO = Gauge(
    "groundwork_build_info",
    "Always 1; the labels say which version runs in which environment.",
    ["version", "environment"],
    multiprocess_mode="max",
    registry=None,
)


class InProgressMiddleware:
    """Count the requests being served; a killed worker's count is dropped with its files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http" or scope["path"] in UNMEASURED_PATHS:
            await self.app(scope, receive, send)
            return
        # Unknown methods share one label so clients cannot grow the series without bound.
        method = scope["method"] if scope["method"] in STANDARD_METHODS else "OTHER"
        with REQUESTS_IN_PROGRESS.labels(method).track_inprogress():
            await self.app(scope, receive, send)


def install_metrics(app: FastAPI, settings: Settings) -> None:
    """Measure every request by route template, method and status, and serve `/metrics`.

    Each app gets its own registry, so several apps in one process (tests) never collide;
    under gunicorn, `/metrics` reads every worker's files instead.
    """
    registry = CollectorRegistry()
    for metric in (*POOL_GAUGES, POOL_CAPACITY, BUILD_INFO, REQUESTS_IN_PROGRESS):
        registry.register(metric)
    # The instrumentator's own in-progress gauge ignores `registry` (it always uses the
    # global one), so InProgressMiddleware keeps that gauge instead.
    # Only the two series dashboards and alerts use: the instrumentator's default set adds a
    # label-free histogram and two size summaries, each a further write per request.
    Instrumentator(
        should_group_status_codes=False,
        excluded_handlers=UNMEASURED_PATHS,
        registry=registry,
    ).add(
        metrics.requests(registry=registry),
        metrics.latency(buckets=LATENCY_BUCKETS, registry=registry),
    ).instrument(app).expose(app, include_in_schema=False, should_gzip=False)
    app.add_middleware(InProgressMiddleware)
    BUILD_INFO.labels(version=app.version, environment=settings.env.value).set(1)
