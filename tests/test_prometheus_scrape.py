"""A real Prometheus scrapes the real gunicorn service and sees every worker's requests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.dev.embedded_postgres import free_port
from tests.processes import ServerProcess
from tests.support import require_tool, wait_until_ok

pytestmark = pytest.mark.slow
REQUESTS = 40
STARTUP_SECONDS = 30


@pytest.fixture
def prometheus(tmp_path: Path, server: ServerProcess) -> Iterator[str]:
    binary = require_tool("prometheus", "make system-packages installs Debian's prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: groundwork\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{server.port}']}}]\n"
    )
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        # Until its storage is up, the query API answers 503.
        wait_until_ok(
            f"{url}/-/ready", process, STARTUP_SECONDS, lambda: log_path.read_text()[-3000:]
        )
        yield url
    finally:
        process.terminate()
        process.wait(20)


def query(prometheus: str, promql: str) -> float | None:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql})
    assert response.status_code == httpx.codes.OK, response.text
    result = response.json()
    samples = result.get("data", {}).get("result", [])
    return float(samples[0]["value"][1]) if samples else None


def wait_for(prometheus: str, promql: str, expected: float, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while (value := query(prometheus, promql)) != expected:
        assert time.monotonic() < deadline, f"{promql} = {value}, expected {expected}"
        time.sleep(0.5)


def test_prometheus_scrapes_the_sum_over_all_workers(server, prometheus, identities):
    wait_for(prometheus, 'up{job="groundwork"}', 1)
    headers = {"Connection": "close", **identities.headers("user-00")}

    for _ in range(REQUESTS):
        response = httpx.get(f"{server.base_url}/api/v1/me/tasks", headers=headers)
        assert response.status_code == 200

    wait_for(
        prometheus, 'sum(http_requests_total{handler="/api/v1/me/tasks",status="200"})', REQUESTS
    )
    assert query(prometheus, "sum(db_pool_capacity)") == 20
    assert query(prometheus, 'groundwork_build_info{environment="prod"}') == 1
