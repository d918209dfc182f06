"""`make bench` in miniature: the harness runs end to end. No timing is asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT, require_tool

TINY_RUN = {
    "BENCH_DURATION": "1",
    "BENCH_WARMUP": "0",
    "BENCH_ROUNDS": "1",
    "BENCH_SEED_USERS": "100",
    "BENCH_SEED_TASKS": "1000",
    "BENCH_CONNECTIONS": "8",
    "BENCH_THREADS": "1",
}
ENDPOINTS = [
    "health",
    "health_db",
    "get_user",
    "tasks_first_page",
    "tasks_deep_page",
    "create_task",
    "update_task",
]


@pytest.mark.slow
def test_bench_harness_measures_every_endpoint_and_writes_results(tmp_path: Path) -> None:
    require_tool("wrk", "make system-packages")
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
    assert report["metrics_scrape"]["bytes"] > 0
    assert len(report["targets"]) == 6
    assert "ratio" in completed.stdout
    assert "targets:" in completed.stdout
