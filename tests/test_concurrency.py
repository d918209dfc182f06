"""Data integrity under concurrency, against the real gunicorn server and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.slow
CLIENTS = 32
TASKS = 2_000
USERS = 10


async def run_concurrently(jobs, clients: int = CLIENTS):
    limit = asyncio.Semaphore(clients)

    async def bounded(job):
        async with limit:
            return await job

    return await asyncio.gather(*(bounded(job) for job in jobs))


async def test_concurrent_creates_store_every_task_exactly_once(server, database):
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        users = [
            (
                await client.post(
                    "/api/v1/users", json={"email": f"u{n}@example.com", "full_name": "U"}
                )
            ).json()
            for n in range(USERS)
        ]
        owners = [users[n % USERS]["id"] for n in range(TASKS)]
        responses = await run_concurrently(
            client.post(f"/api/v1/users/{owner}/tasks", json={"title": f"task {n}"})
            for n, owner in enumerate(owners)
        )

    assert Counter(response.status_code for response in responses) == {201: TASKS}
    with psycopg.connect(database.admin_url) as connection:
        rows = connection.execute("SELECT user_id::text, count(*) FROM tasks GROUP BY 1").fetchall()
    assert dict(rows) == {owner: count for owner, count in Counter(owners).items()}
    assert sum(count for _, count in rows) == TASKS


async def test_conditional_updates_never_lose_a_write(server):
    writers = 20
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        user = (
            await client.post("/api/v1/users", json={"email": "c@example.com", "full_name": "C"})
        ).json()
        tasks = f"/api/v1/users/{user['id']}/tasks"
        task = (await client.post(tasks, json={"title": "0"})).json()
        url = f"{tasks}/{task['id']}"

        async def increment() -> int:
            """Read, add one, write back if the ETag read is still current; retry on 412."""
            conflicts = 0
            while True:
                current = await client.get(url)
                body = {"title": str(int(current.json()["title"]) + 1)}
                precondition = {"If-Match": current.headers["etag"]}
                response = await client.patch(url, json=body, headers=precondition)
                if response.status_code == 200:
                    return conflicts
                assert response.status_code == 412, response.text
                conflicts += 1

        conflicts = await run_concurrently(increment() for _ in range(writers))
        final = (await client.get(url)).json()

    assert final["title"] == str(writers)
    assert final["version"] == writers + 1
    assert sum(conflicts) > 0, "the writers never raced; the test proved nothing"


async def test_racing_writers_with_one_version_exactly_one_wins(server):
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        user = (
            await client.post("/api/v1/users", json={"email": "r@example.com", "full_name": "R"})
        ).json()
        url = f"/api/v1/users/{user['id']}"
        responses = await run_concurrently(
            client.patch(url, json={"full_name": f"writer {n}"}, headers={"If-Match": '"1"'})
            for n in range(16)
        )
        final = (await client.get(url)).json()

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 412: 15}
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert final["full_name"] == winner["full_name"]
    assert final["version"] == 2
