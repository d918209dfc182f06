"""`make bench` in miniature: the harness runs end to end, with real tokens. No timing is asserted.

The application answers 401 to a request without a valid token, and every error counts, so
zero errors on the API endpoints means the load authenticated as it should.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.run import COMPARED_ENDPOINTS
from tests.identity import require_identity_provider
from tests.support import PROJECT_ROOT, require_tool

TINY_RUN = {
    "BENCH_DURATION": "1",
    "BENCH_WARMUP": "0",
    "BENCH_ROUNDS": "1",
    "BENCH_SEED_USERS": "100",
    "BENCH_SEED_TASKS": "1000",
    "BENCH_CONNECTIONS": "8",
    "BENCH_THREADS": "1",
    "BENCH_CALLERS": "3",
    "BENCH_VERIFY_RUNS": "200",
    "BENCH_COUNT_REQUESTS": "10",
}
# The probes, then the API endpoints held to the psycopg baseline.
ENDPOINTS = ["health", "health_db", *COMPARED_ENDPOINTS]


@pytest.mark.slow
def test_bench_harness_measures_every_endpoint_and_writes_results(tmp_path: Path) -> None:
    require_tool("wrk", "make system-packages")
    require_identity_provider()
    completed = subprocess.run(
        [sys.executable, "-m", "tests.bench.run"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **TINY_RUN, "BENCH_RESULTS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    [results_file] = tmp_path.glob("bench-*.json")
    report = json.loads(results_file.read_text())

    assert [endpoint["name"] for endpoint in report["endpoints"]] == ENDPOINTS
    for endpoint in report["endpoints"]:
        for summary in (endpoint["application"], endpoint["baseline_result"]):
            assert summary["requests"] > 0, endpoint
            assert summary["errors"] == 0, endpoint
        assert endpoint["ratio"] > 0
    assert report["data"] == {**report["data"], "users": 100, "tasks": 1000, "big_user_tasks": 100}
    assert len(report["worker_rss_bytes"]["app"]) == 2
    assert report["readiness_seconds"] > 0
    assert report["worker_replacement_seconds"] > 0
    assert report["metrics_scrape"]["bytes"] > 0
    assert report["identity"]["callers"] == ["bench-user-0", "bench-user-1", "bench-user-2"]
    assert report["identity"]["users_provisioned_during_run"] == 0
    assert report["identity"]["jwks_fetches"] >= 1
    verification = report["token_verification"]
    assert verification["runs"] == 200
    assert verification["verify_us"] > 0
    assert verification["joserfc_us"] > 0
    counted = report["statements_per_request"]
    assert [endpoint["name"] for endpoint in counted] == ENDPOINTS[1:]
    for endpoint in counted:
        assert endpoint["application"]["per_request"] > 0, endpoint
        assert endpoint["baseline_result"]["per_request"] > 0, endpoint
    # /health, throughput and p99 of each API endpoint, then five process-wide targets.
    assert len(report["targets"]) == 1 + 2 * len(COMPARED_ENDPOINTS) + 5
    assert "ratio" in completed.stdout
    assert "TokenVerifier.verify(token)" in completed.stdout
    assert "targets:" in completed.stdout
