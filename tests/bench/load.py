"""Load generation with wrk: a set of requests against one server, measured as JSON.

Each request may carry a bearer token (`Authorization: Bearer <token>`), as real callers do.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("report.lua")
RESULT_PREFIX = "BENCH_RESULT "
TIMEOUT_SECONDS = 5  # a slower answer counts as an error instead of a latency sample


@dataclass(frozen=True)
class Request:
    """One HTTP request of a workload."""

    method: str
    path: str
    body: Mapping[str, object] | None = None
    token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers besides wrk's own."""
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Workload:
    """What one table row measures: the application's requests and its baseline's.

    wrk cycles through each list. The baseline's requests carry the same tokens, so both
    servers parse the same headers, but the baselines never read them.
    """

    name: str
    title: str
    baseline: str
    requests: tuple[Request, ...]
    baseline_requests: tuple[Request, ...]

    def requests_of(self, server: str) -> tuple[Request, ...]:
        """The requests sent to `server` (the baseline's name, or anything else for the app)."""
        return self.baseline_requests if server == self.baseline else self.requests


def is_static(requests: tuple[Request, ...]) -> bool:
    """One bodiless request: wrk can send it without calling Lua per request."""
    return len(requests) == 1 and requests[0].body is None


@dataclass(frozen=True)
class LoadResult:
    """What wrk measured in one run."""

    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_kinds: dict[str, int]


@dataclass(frozen=True)
class LoadSettings:
    """How hard and how long wrk drives a server."""

    connections: int
    threads: int
    seconds: float


def run_wrk(
    base_url: str, name: str, requests: tuple[Request, ...], load: LoadSettings, scratch: Path
) -> LoadResult:
    """Drive `base_url` with `requests` for `load.seconds`; return wrk's numbers.

    Errors are HTTP statuses >= 400 plus socket errors (connect, read, write, timeout). The
    token of a static request goes to wrk in the environment, not on its command line.
    """
    env = dict(os.environ)
    env.pop("BENCH_REQUESTS_FILE", None)
    env.pop("BENCH_AUTHORIZATION", None)
    url = base_url
    if is_static(requests):
        url += requests[0].path
        if requests[0].token is not None:
            env["BENCH_AUTHORIZATION"] = requests[0].headers["Authorization"]
    else:
        requests_file = scratch / f"{name}.tsv"
        requests_file.write_text("".join(_request_line(request) for request in requests))
        env["BENCH_REQUESTS_FILE"] = str(requests_file)
    completed = subprocess.run(
        [
            "wrk",
            f"--threads={load.threads}",
            f"--connections={load.connections}",
            f"--duration={max(1, round(load.seconds))}s",
            f"--timeout={TIMEOUT_SECONDS}s",
            f"--script={SCRIPT}",
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return _result(json.loads(line.removeprefix(RESULT_PREFIX)))
    raise RuntimeError(f"wrk gave no result for {name}: {completed.stdout}{completed.stderr}")


def _request_line(request: Request) -> str:
    # JSON escapes tabs and newlines inside strings, so the body never splits the line.
    body = "" if request.body is None else json.dumps(request.body, separators=(",", ":"))
    return f"{request.method}\t{request.path}\t{request.token or ''}\t{body}\n"


def _result(raw: dict[str, Any]) -> LoadResult:
    latency, error_kinds = raw["latency_us"], raw["errors"]
    requests, seconds = raw["requests"], raw["duration_us"] / 1e6
    return LoadResult(
        requests=requests,
        seconds=seconds,
        requests_per_second=requests / seconds if seconds else 0.0,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        errors=sum(error_kinds.values()),
        error_kinds=error_kinds,
    )
