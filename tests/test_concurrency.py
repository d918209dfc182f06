"""Data integrity under concurrency: real tokens, the real gunicorn server and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import psycopg
import pytest

from tests.identity import USER_CLIENTS

pytestmark = pytest.mark.slow
CLIENTS = 32
TASKS = 2_000
USERS = 10
ME = "/api/v1/me"
TASKS_URL = "/api/v1/me/tasks"


async def run_concurrently(jobs, clients: int = CLIENTS):
    limit = asyncio.Semaphore(clients)

    async def bounded(job):
        async with limit:
            return await job

    return await asyncio.gather(*(bounded(job) for job in jobs))


async def test_concurrent_creates_store_every_task_exactly_once(server, database, identities):
    callers = [identities.headers(client_id) for client_id in USER_CLIENTS[:USERS]]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        user_ids = [(await client.get(ME, headers=headers)).json()["id"] for headers in callers]
        owners = [n % USERS for n in range(TASKS)]
        responses = await run_concurrently(
            client.post(TASKS_URL, json={"title": f"task {n}"}, headers=callers[owner])
            for n, owner in enumerate(owners)
        )

    assert Counter(response.status_code for response in responses) == {201: TASKS}
    assert all(
        response.json()["user_id"] == user_ids[owner]
        for response, owner in zip(responses, owners, strict=True)
    )
    with psycopg.connect(database.admin_url) as connection:
        rows = connection.execute("SELECT user_id::text, count(*) FROM tasks GROUP BY 1").fetchall()
    assert dict(rows) == {user_ids[owner]: count for owner, count in Counter(owners).items()}
    assert sum(count for _, count in rows) == TASKS


async def test_conditional_updates_never_lose_a_write(server, identities):
    writers = 20
    headers = identities.headers("user-00")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, headers=headers) as client:
        task = (await client.post(TASKS_URL, json={"title": "0"})).json()
        url = f"{TASKS_URL}/{task['id']}"

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


async def test_racing_writers_with_one_version_exactly_one_wins(server, identities):
    headers = identities.headers("user-00")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, headers=headers) as client:
        assert (await client.get(ME)).headers["etag"] == '"1"'
        responses = await run_concurrently(
            client.patch(ME, json={"full_name": f"writer {n}"}, headers={"If-Match": '"1"'})
            for n in range(16)
        )
        final = (await client.get(ME)).json()

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 412: 15}
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert final["full_name"] == winner["full_name"]
    assert final["version"] == 2


async def test_concurrent_first_requests_provision_one_user(server, database, identities):
    headers = identities.headers("user-01")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, headers=headers) as client:
        responses = await run_concurrently(client.get(ME) for _ in range(CLIENTS))

    assert Counter(response.status_code for response in responses) == {200: CLIENTS}
    assert len({response.json()["id"] for response in responses}) == 1
    with psycopg.connect(database.admin_url) as connection:
        row = connection.execute("SELECT count(*) FROM users WHERE subject = 'user-01'").fetchone()
    assert row == (1,)
