"""Prometheus metrics that stay correct under gunicorn's several worker processes.

With `PROMETHEUS_MULTIPROC_DIR` set, every worker writes its samples to files there and
`/metrics` aggregates all of them, so each scrape sees the whole process group.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Gauge
from prometheus_fastapi_instrumentator import Instrumentator

from app.core.config import Settings

UNMEASURED_PATHS = ["/metrics", "/health", "/health/db"]

BUILD_INFO = Gauge(
    "groundwork_build_info",
    "Always 1; the labels say which version runs in which environment.",
    ["version", "environment"],
    multiprocess_mode="max",
)


def install_metrics(app: FastAPI, settings: Settings) -> None:
    """Measure every request by route template, method and status, and serve `/metrics`."""
    Instrumentator(
        should_group_status_codes=False,
        excluded_handlers=UNMEASURED_PATHS,
        should_instrument_requests_inprogress=True,
        inprogress_labels=True,
    ).instrument(app).expose(app, include_in_schema=False, should_gzip=False)
    BUILD_INFO.labels(version=app.version, environment=settings.env.value).set(1)
