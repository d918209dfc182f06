"""Request heads are bounded by the production server: refused before anything more is read.

Against real gunicorn workers: a long request target, too many or too large headers and an
endless header are answered 414 or 431, and worker memory (VmRSS in /proc) stays flat while
100 connections each try to send a 50 MB header at once.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import httpx
import pytest

from tests.processes import ServerProcess

HUGE_HEADER_BYTES = 50 * 1024 * 1024
CHUNK = b"a" * 65536


def exchange(server: ServerProcess, head: bytes) -> bytes:
    """Send `head` whole on one connection and return everything the server answered."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(head)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def request(target: str = "/health/db", headers: Sequence[str] = ()) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: x", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode()


@pytest.mark.slow
def test_over_limit_heads_are_refused_and_limits_are_exact(server):
    at_limit = request("/health?" + "a" * (4094 - len("/health?")))
    line = exchange(server, request("/health?" + "a" * 4095))
    fields = exchange(server, request(headers=[f"X-{n}: {n}" for n in range(100)]))
    field = exchange(server, request(headers=["X-Big: " + "a" * 8190]))
    head = exchange(server, request(headers=[f"X-{n}: " + "a" * 8000 for n in range(5)]))

    assert status_of(exchange(server, at_limit)) == 200
    assert status_of(line) == 414
    assert status_of(fields) == 431
    assert status_of(field) == 431
    assert status_of(head) == 431
    assert b"application/problem+json" in field
    assert httpx.get(server.base_url + "/health/db").status_code == 200


def worker_rss_kib(server: ServerProcess) -> dict[int, int]:
    usage = {}
    for pid in server.worker_pids():
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    usage[pid] = int(line.split()[1])
    return usage


async def send_huge_header(port: int) -> tuple[int, bytes]:
    """Try to send a 50 MB header; return the bytes sent before the server cut in, its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        writer.write(b"GET /health/db HTTP/1.1\r\nHost: x\r\nX-Huge: ")
        while sent < HUGE_HEADER_BYTES and not reader.at_eof():
            writer.write(CHUNK)
            await writer.drain()
            sent += len(CHUNK)
        answer = await asyncio.wait_for(reader.read(), 10)
    except (ConnectionError, TimeoutError):
        answer = b""
    finally:
        writer.close()
    return sent, answer


@pytest.mark.slow
async def test_worker_memory_stays_flat_under_100_huge_headers(server):
    before = worker_rss_kib(server)

    results = await asyncio.gather(*(send_huge_header(server.port) for _ in range(100)))

    after = worker_rss_kib(server)
    assert after.keys() == before.keys(), "a worker died"
    for pid, kib in after.items():
        assert kib - before[pid] < 30 * 1024, (before, after)
    answers = [answer for _, answer in results if answer]
    assert all(answer.startswith(b"HTTP/1.1 431 ") for answer in answers), answers[:3]
    assert max(sent for sent, _ in results) < HUGE_HEADER_BYTES
    async with httpx.AsyncClient() as client:
        assert (await client.get(server.base_url + "/health/db")).status_code == 200
