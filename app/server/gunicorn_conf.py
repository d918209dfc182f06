"""gunicorn configuration, the one process model for `make run`, the image and the chart.

gunicorn supervises uvicorn workers: it restarts crashed ones, recycles them after
`MAX_REQUESTS` (one at a time, each only while the others are ready: app.server.recycling)
and drains them on SIGTERM.
"""

from __future__ import annotations

import gc
import importlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from app.core.config import SettingsError, get_server_settings, get_settings
from app.identity.settings import get_identity_settings
from app.server.logging import StructlogGunicornLogger
from app.server.recycling import STATE_DIR_VARIABLE, WorkerRegistry, registry_directory

# Read here so that a bad setting stops the master with one line, before any worker forks
# (gunicorn would print a traceback for any other failure of its configuration file).
try:
    _server = get_server_settings()
    get_settings()
    get_identity_settings()
except SettingsError as error:
    sys.exit(error.report())

# Every worker writes its metric samples here; /metrics aggregates them. It is set before
# any worker imports prometheus_client, which reads it at import time.
_metrics_dir = _server.prometheus_multiproc_dir or Path(
    tempfile.gettempdir(), f"groundwork-metrics-{os.getpid()}"
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)
# Which workers are ready, for recycling without a gap; next to the heartbeat files.
_state_dir = registry_directory(_server.worker_tmp_dir, os.getpid())
os.environ[STATE_DIR_VARIABLE] = str(_state_dir)

# Allocations (net of frees) between two collections of the youngest generation in a worker.
# Python 3.13 raised its default from 700 to 2000; young cyclic garbage waits up to this many.
YOUNG_COLLECTION_THRESHOLD = 7000

wsgi_app = "app.main:create_app()"
bind = [f"{_server.host}:{_server.port}"]
workers = _server.web_concurrency
worker_class = "app.server.http.BoundedUvicornWorker"
limit_request_line = _server.limit_request_line
limit_request_fields = _server.limit_request_fields
limit_request_field_size = _server.limit_request_field_size
graceful_timeout = _server.graceful_timeout
timeout = _server.worker_timeout
keepalive = _server.keepalive
max_requests = _server.max_requests
max_requests_jitter = _server.max_requests_jitter
forwarded_allow_ips = _server.forwarded_allow_ips
# The heartbeat file lives in memory, not on a possibly read-only or slow disk.
worker_tmp_dir = str(_server.worker_tmp_dir) if _server.worker_tmp_dir else None
# gunicorn 27 would create a control socket under $HOME, which a read-only root cannot hold.
control_socket_disable = True
# The app is built in each worker, which opens its own pool after the fork; the master only
# imports its modules (on_starting).
preload_app = False
logger_class = StructlogGunicornLogger
accesslog = None


def on_starting(server: Any) -> None:
    """Start from empty metrics and worker folders, then import the application's code.

    Files of an earlier run would count again. Workers fork with every module already
    imported (copy-on-write, shared between them), so a new or recycled worker only builds
    the app and opens its pool. Nothing is imported under `--reload`, whose workers must read
    the code as it is now.
    """
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    WorkerRegistry.reset(_state_dir)
    if not server.cfg.reload:
        # The app gunicorn serves: this file's `wsgi_app`, or the one on its command line.
        importlib.import_module(server.app.app_uri.partition(":")[0])
        # What exists now lives as long as the process: the collector need not scan it again
        # (README, "Performance") and, unscanned, its pages stay shared with the workers.
        gc.freeze()


def post_worker_init(_: Any) -> None:
    """Exempt the worker's app, built by now, from garbage collection; collect young objects less.

    A full collection over the app's objects took about 90 ms, a pause that every request in
    flight on the worker waited out (the p99 of `make bench`). Then the default threshold (700
    allocations) ran a young collection every few requests over whatever the requests in flight
    held; at `YOUNG_COLLECTION_THRESHOLD` a request costs about a tenth less CPU (README,
    "Performance").
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


def on_exit(_: Any) -> None:
    """Remove the worker folder with the master."""
    shutil.rmtree(_state_dir, ignore_errors=True)


def child_exit(_: Any, worker: Any) -> None:
    """Drop the live gauges and the readiness of a worker that exited, however it died."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
    WorkerRegistry(_state_dir, workers).forget(worker.pid)


def worker_int(worker: Any) -> None:
    """Under `--reload` (`make run`, skaffold's dev profile), end a worker whose code changed.

    gunicorn's reloader marks the worker as no longer alive and calls this hook, but a uvicorn
    worker stops only on a signal: SIGTERM lets it finish its requests and exit, and the master
    starts a fresh one that imports the new code (without this the file is only logged as
    modified). Production never runs with `--reload`.
    """
    if worker.cfg.reload:
        os.kill(os.getpid(), signal.SIGTERM)
