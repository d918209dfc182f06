"""The production process model, for real: gunicorn, two uvicorn workers, a real PostgreSQL.

Every API request carries an access token from the test OpenID Provider, as in production.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import ServerProcess

pytestmark = pytest.mark.slow
TASKS = "/api/v1/me/tasks"


@pytest.fixture
def token(identities) -> dict[str, str]:
    """The Authorization header of one test identity."""
    return identities.headers("user-00")


def scrape(server: ServerProcess) -> dict[str, float]:
    """Sum every sample of /metrics by metric name and labels we care about."""
    text = httpx.get(server.base_url + "/metrics", timeout=5).text
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name
            if "handler" in sample.labels:
                key += (
                    f"{{handler={sample.labels['handler']},status={sample.labels.get('status')}}}"
                )
            totals[key] = totals.get(key, 0) + sample.value
    return totals


def get_many(server: ServerProcess, token: dict[str, str], count: int) -> int:
    """Send `count` authenticated GETs, each on a new connection so they spread over the workers."""
    ok = 0
    for _ in range(count):
        response = httpx.get(
            server.base_url + TASKS, headers={"Connection": "close", **token}, timeout=10
        )
        ok += response.status_code == 200
    return ok


def requests_served(server: ServerProcess) -> float:
    return scrape(server).get(f"http_requests_total{{handler={TASKS},status=200}}", 0)


def access_lines(server: ServerProcess) -> list[dict]:
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request"]


def test_request_counter_sums_every_worker_on_every_scrape(server, token):
    served = get_many(server, token, 120)

    counts = [requests_served(server) for _ in range(5)]

    assert served == 120
    assert counts == [120] * 5
    assert len({line["pid"] for line in access_lines(server) if line["path"] == TASKS}) == 2


def test_metrics_cover_pool_build_and_latency(server, token):
    get_many(server, token, 3)

    metrics = scrape(server)

    assert metrics["db_pool_capacity"] == 2 * 10  # two workers, pool size 5 + overflow 5
    assert metrics["db_pool_connections_open"] >= 1
    assert metrics["db_pool_connections_in_use"] == 0
    assert metrics["db_pool_requests_waiting"] == 0
    assert metrics["groundwork_build_info"] == 1
    assert metrics[f"http_request_duration_seconds_count{{handler={TASKS},status=200}}"] == 3
    assert not any("handler=/health" in key or "handler=/metrics" in key for key in metrics)


def test_killed_worker_is_replaced_and_its_gauges_do_not_stick(server, token):
    stop = threading.Event()
    served = []

    def traffic() -> None:
        while not stop.is_set():
            try:
                served.append(get_many(server, token, 1))
            except httpx.TransportError:
                served.append(0)

    clients = [threading.Thread(target=traffic) for _ in range(4)]
    for client in clients:
        client.start()
    time.sleep(1)
    before = server.worker_pids()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        len(server.worker_pids()) != 2 or victim in server.worker_pids()
    ):
        time.sleep(0.2)
    time.sleep(1)
    stop.set()
    for client in clients:
        client.join()

    assert len(server.worker_pids()) == 2
    assert victim not in server.worker_pids()
    ok = sum(served)
    counted = requests_served(server)
    # A request the victim counted in the instant before it died may have lost its answer.
    assert ok <= counted <= ok + len(clients)
    assert scrape(server).get("http_requests_inprogress", 0) == 0
    assert httpx.get(server.base_url + "/health/db").status_code == 200


def test_sigterm_lets_the_request_in_flight_finish_and_exits_zero(server, token):
    body = b'{"title": "Slow upload", "description": "sent in two parts"}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as connection:
        connection.sendall(
            f"POST {TASKS} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Authorization: {token['Authorization']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        time.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        time.sleep(1)
        connection.sendall(body[10:])
        response = connection.recv(65536).decode()

    assert response.startswith("HTTP/1.1 201"), response
    assert server.process.wait(30) == 0
    assert "database_pool_closed" in server.output()


def test_access_log_is_json_with_the_documented_fields_and_no_secret(server, database, token):
    httpx.get(
        server.base_url + TASKS,
        headers={"X-Request-ID": "access-1", "X-Forwarded-For": "203.0.113.7", **token},
    )
    httpx.get(server.base_url + "/health/db")

    lines = access_lines(server)
    api = next(line for line in lines if line["request_id"] == "access-1")
    assert api | {"timestamp": None, "duration_ms": None, "pid": None} == {
        "event": "request",
        "level": "info",
        "logger": "groundwork.access",
        "method": "GET",
        "path": TASKS,
        "route": TASKS,
        "status": 200,
        "client": "203.0.113.7",
        "request_id": "access-1",
        "subject": "user-00",  # the token's `sub`, never the token
        "timestamp": None,
        "duration_ms": None,
        "pid": None,
    }
    assert all(line["path"] != "/health/db" for line in lines), "probes log at debug level"
    server.stop()
    assert database.password not in server.output()
    assert token["Authorization"].removeprefix("Bearer ") not in server.output()
    for line in server.output().splitlines():
        json.loads(line)
