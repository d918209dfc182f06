"""Connections are bounded by the production server: a head deadline and a per-worker cap.

Against real gunicorn workers: 1,000 slowloris connections (heads that never end, or nothing
at all) do not keep real requests from being answered, and each is closed once its
HEADER_READ_TIMEOUT passes (408 if part of a head came). Past WORKER_MAX_CONCURRENCY requests
in progress a worker answers 503 problem+json at once, while /health still answers.
"""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from tests.support import assert_problem

pytestmark = pytest.mark.slow
SLOWLORIS = 1_000
HEADER_READ_TIMEOUT = 5
BOUND_SECONDS = 60


@pytest.fixture
def start_server(start_process, database, identity_env):
    def start(**env: str):
        process = start_process({"DATABASE_URL": database.url, **identity_env, **env})
        process.wait_ready()
        process.wait_workers_started()
        return process

    return start


async def hold_open(port: int, head: bytes) -> tuple[bytes, float]:
    """Send `head` and never finish it; return what the server answered and when it closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        answer = await asyncio.wait_for(reader.read(), BOUND_SECONDS)
        return answer, time.monotonic()
    finally:
        writer.close()


async def test_slowloris_does_not_starve_requests_and_is_closed_after_the_timeout(
    start_server, identities
):
    server = start_server(HEADER_READ_TIMEOUT=str(HEADER_READ_TIMEOUT))
    heads = [
        b"" if n % 10 == 0 else b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "
        for n in range(SLOWLORIS)
    ]
    slow = [asyncio.create_task(hold_open(server.port, head)) for head in heads]
    await asyncio.sleep(0)

    async with httpx.AsyncClient(base_url=server.base_url, timeout=BOUND_SECONDS) as client:
        answers = [
            await client.get(path, headers={"Connection": "close", **identities.headers("user-01")})
            for path in ["/health/db", "/api/v1/me/tasks"] * 10
        ]
        served_at = time.monotonic()
        closed = await asyncio.gather(*slow)
        after = await client.get("/health/db")

    assert [answer.status_code for answer in answers] == [200] * 20
    assert served_at < min(at for _, at in closed), "a slowloris connection closed first"
    partial = [answer for (answer, _), head in zip(closed, heads, strict=True) if head]
    silent = [answer for (answer, _), head in zip(closed, heads, strict=True) if not head]
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in partial), partial[:2]
    assert b"application/problem+json" in partial[0]
    assert silent == [b""] * len(silent)
    assert after.status_code == 200


def start_upload(port: int, token: dict[str, str]) -> socket.socket:
    """Begin a POST whose body never arrives; return once the application waits for it."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=BOUND_SECONDS)
    connection.sendall(
        b"POST /api/v1/me/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 20\r\nExpect: 100-continue\r\n"
        + f"Authorization: {token['Authorization']}\r\n\r\n".encode()
    )
    # uvicorn sends 100 Continue when the application first reads the body.
    assert connection.recv(1024).startswith(b"HTTP/1.1 100 ")
    return connection


def test_requests_past_the_cap_get_503_at_once_and_liveness_still_answers(start_server, identities):
    server = start_server(WEB_CONCURRENCY="1", WORKER_MAX_CONCURRENCY="2")
    token = identities.headers("user-02")
    uploads = [start_upload(server.port, token) for _ in range(2)]

    busy = httpx.get(server.base_url + "/health/db", timeout=BOUND_SECONDS)
    liveness = httpx.get(server.base_url + "/health", timeout=BOUND_SECONDS)
    created = []
    for upload in uploads:
        with upload:
            upload.sendall(b'{"title": "covered"}')
            created.append(upload.recv(65536).split(b" ", 2)[1])

    problem = assert_problem(busy, 503)
    assert problem["type"].endswith("/server-busy")
    assert busy.headers["Retry-After"] == "1"
    assert liveness.status_code == 200
    assert created == [b"201", b"201"]
    assert httpx.get(server.base_url + "/health/db").status_code == 200
