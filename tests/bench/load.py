"""Load generation with wrk: one workload (a set of requests) against one server, as JSON."""

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


@dataclass(frozen=True)
class Workload:
    """What one table row measures: requests that wrk cycles through, and the baseline."""

    name: str
    title: str
    baseline: str
    requests: tuple[Request, ...]

    @property
    def is_static(self) -> bool:
        """One bodiless GET: wrk can send it without calling Lua per request."""
        return len(self.requests) == 1 and self.requests[0].body is None


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


def run_wrk(base_url: str, workload: Workload, load: LoadSettings, scratch: Path) -> LoadResult:
    """Drive `base_url` with `workload` for `load.seconds`; return wrk's numbers.

    Errors are HTTP statuses >= 400 plus socket errors (connect, read, write, timeout).
    """
    env = dict(os.environ)
    env.pop("BENCH_REQUESTS_FILE", None)
    url = base_url
    if workload.is_static:
        url += workload.requests[0].path
    else:
        requests_file = scratch / f"{workload.name}.tsv"
        requests_file.write_text("".join(_request_line(request) for request in workload.requests))
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
    raise RuntimeError(
        f"wrk gave no result for {workload.name}: {completed.stdout}{completed.stderr}"
    )


def _request_line(request: Request) -> str:
    body = "" if request.body is None else json.dumps(request.body, separators=(",", ":"))
    return f"{request.method}\t{request.path}\t{body}\n"


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
