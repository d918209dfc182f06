"""Isolation through the production server: real gunicorn workers, 32 identities at once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.identity import USER_CLIENTS

pytestmark = pytest.mark.slow

CLIENTS = USER_CLIENTS[:32]
TASKS_EACH = 5


async def create_and_list(
    http: httpx.AsyncClient, headers: dict[str, str], client_id: str
) -> tuple[set[str], list[dict[str, Any]]]:
    created = set()
    for number in range(TASKS_EACH):
        response = await http.post(
            "/api/v1/me/tasks", headers=headers, json={"title": f"{client_id} #{number}"}
        )
        assert response.status_code == 201, response.text
        created.add(response.json()["id"])
    listed = await http.get("/api/v1/me/tasks", headers=headers, params={"limit": 100})
    assert listed.status_code == 200, listed.text
    return created, listed.json()["items"]


async def test_32_concurrent_identities_each_see_exactly_their_own_tasks(server, identities):
    headers = {client_id: identities.headers(client_id) for client_id in CLIENTS}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        results = await asyncio.gather(
            *(create_and_list(http, headers[client_id], client_id) for client_id in CLIENTS)
        )
        profiles = await asyncio.gather(
            *(http.get("/api/v1/me", headers=headers[client_id]) for client_id in CLIENTS)
        )
        everyone = await http.get("/api/v1/users", headers=identities.admin, params={"limit": 100})

    for client_id, (created, listed), profile in zip(CLIENTS, results, profiles, strict=True):
        owner = profile.json()["id"]
        assert {task["id"] for task in listed} == created
        assert {task["user_id"] for task in listed} == {owner}
        assert {task["title"].split(" #")[0] for task in listed} == {client_id}
    subjects = [user["subject"] for user in everyone.json()["items"]]
    assert sorted(subjects) == sorted([*CLIENTS, "admin"]), "one user per identity, no duplicate"


async def test_a_non_admin_gets_403_on_users_through_the_server(server, identities):
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        listed = await http.get("/api/v1/users", headers=identities.headers("user-05"))
        admin = await http.get("/api/v1/users", headers=identities.admin)

    assert listed.status_code == 403
    assert listed.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
    assert admin.status_code == 200


async def test_the_access_log_names_the_subject_and_never_the_token(server, identities):
    token = identities.token("user-06")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        ok = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        forged = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}x"})

    assert ok.status_code == 200
    assert forged.status_code == 401
    output = server.output()
    assert '"subject": "user-06"' in output or '"subject":"user-06"' in output, output[-2000:]
    assert token not in output
