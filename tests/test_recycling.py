"""Recycling never leaves the production server without its other workers ready.

Two real gunicorn workers with a small MAX_REQUESTS and no jitter reach their limit together
under even load, as in production. The workers' own log lines, in the order they were
written, show each recycling worker leaving only while the other is ready, and a worker that
reached its limit while its sibling was booting waiting for it.
"""

from __future__ import annotations

import json
import re
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.slow
RECYCLES = 3
BOUND_SECONDS = 90
EVENT = re.compile(r"^worker (\d+) (ready|reached|recycling)")


def worker_events(output: str) -> list[tuple[str, int]]:
    """(event, pid) of each readiness and recycling line, in the order they were written."""
    events = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        if match := EVENT.match(json.loads(line).get("event", "")):
            events.append((match[2], int(match[1])))
    return events


def test_a_worker_leaves_only_while_every_other_worker_is_ready(
    start_process, database, identity_env
):
    server = start_process(
        {"DATABASE_URL": database.url, **identity_env, "MAX_REQUESTS": "25"}
        | {"MAX_REQUESTS_JITTER": "0"}
    )
    server.wait_ready()
    server.wait_workers_started()
    stop = threading.Event()
    statuses: list[int] = []

    def traffic() -> None:
        while not stop.is_set():
            response = httpx.get(
                server.base_url + "/health", headers={"Connection": "close"}, timeout=30
            )
            statuses.append(response.status_code)

    clients = [threading.Thread(target=traffic) for _ in range(4)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + BOUND_SECONDS
    while server.output().count(" recycling: leaves") < RECYCLES and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    for client in clients:
        client.join()
    server.stop()

    ready: set[int] = set()
    waited = 0
    recycled = 0
    for event, pid in worker_events(server.output()):
        if event == "ready":
            ready.add(pid)
        elif event == "reached":
            waited += len(ready - {pid}) < 1
        else:
            assert ready - {pid}, f"worker {pid} left while no other worker was ready"
            ready.discard(pid)
            recycled += 1
    assert recycled >= RECYCLES
    assert waited >= 1, "no worker reached its limit while its sibling was booting"
    assert set(statuses) == {200}
