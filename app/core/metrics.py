"""Prometheus metrics that stay correct under gunicorn's several worker processes.

With `PROMETHEUS_MULTIPROC_DIR` set, every worker writes its samples to files there and
`/metrics` aggregates all of them, so each scrape sees the whole process group.

The request series keep the names and labels of prometheus-fastapi-instrumentator, which
dashboards and the chart's alerts read (`handler` is the route template, `none` when no route
matched), but one middleware records them from the route FastAPI already put in the scope:
the instrumentator matched every request against every route a second time, about a tenth
of a small request's CPU (README, "Performance").
"""

from __future__ import annotations

import os
import time

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.middleware import PROBE_AND_SCRAPE_PATHS, UNMATCHED_ROUTE, route_template

UNMATCHED_HANDLER = "none"

# Fine enough for latency objectives between 10 ms and 5 s; every bucket is a series per
# route, method and status, so the list stays short.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LABELS = ("method", "status", "handler")

REQUESTS = Counter(
    "http_requests_total",
    "Total number of requests by method, status and handler.",
    LABELS,
    registry=None,
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Duration of HTTP requests in seconds, until the whole response was sent.",
    LABELS,
    buckets=LATENCY_BUCKETS,
    registry=None,
)
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


class HttpMetricsMiddleware:
    """Count and time every request by route template, method and status.

    The in-progress gauge is per method only; a killed worker's share is dropped with its
    files. Probes and scrapes are not measured.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http" or scope["path"] in PROBE_AND_SCRAPE_PATHS:
            await self.app(scope, receive, send)
            return
        # Unknown methods share one label so clients cannot grow the series without bound.
        method = scope["method"] if scope["method"] in STANDARD_METHODS else "OTHER"
        arrived = dict(scope)
        status = 500  # unless a response starts

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            with REQUESTS_IN_PROGRESS.labels(method).track_inprogress():
                await self.app(scope, receive, send_recording_status)
        finally:
            route = route_template(scope, arrived)
            labels = (method, str(status), UNMATCHED_HANDLER if route == UNMATCHED_ROUTE else route)
            REQUESTS.labels(*labels).inc()
            LATENCY.labels(*labels).observe(time.perf_counter() - started)


def install_metrics(app: FastAPI, settings: Settings, *collectors: Collector) -> None:
    """Measure every request, register `collectors` too, and serve `/metrics`.

    Each app gets its own registry, so several apps in one process (tests) never collide;
    under gunicorn, `/metrics` reads every worker's files instead.
    """
    registry = CollectorRegistry()
    for collector in (*collectors, REQUESTS, LATENCY, REQUESTS_IN_PROGRESS, BUILD_INFO):
        registry.register(collector)
    app.add_middleware(HttpMetricsMiddleware)
    BUILD_INFO.labels(version=app.version, environment=settings.env.value).set(1)

    def metrics(_: Request) -> Response:
        return Response(generate_latest(scraped(registry)), media_type=CONTENT_TYPE_LATEST)

    app.add_route("/metrics", metrics, include_in_schema=False)


def scraped(registry: CollectorRegistry) -> CollectorRegistry:
    """The registry a scrape reads: every worker's files when there are several workers."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return registry
    aggregated = CollectorRegistry()
    multiprocess.MultiProcessCollector(aggregated)  # type: ignore[no-untyped-call]
    return aggregated
