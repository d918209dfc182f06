"""Versions are 64-bit (migration 0003): a row past 2,147,483,647 still changes, with its ETag."""

from __future__ import annotations

import psycopg
import pytest

from tests.support import assert_problem, create_task

LAST_32_BIT = 2**31 - 1


def set_versions(admin_url: str, version: int) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("UPDATE users SET version = %s", [version])
        connection.execute("UPDATE tasks SET version = %s", [version])


async def test_a_row_at_the_last_32_bit_version_still_changes(client, identities, database):
    headers = identities.headers("user-04")
    task = await create_task(client, headers)
    set_versions(database.admin_url, LAST_32_BIT)
    stale = {**headers, "If-Match": f'"{LAST_32_BIT}"'}

    me = await client.patch("/api/v1/me", json={"full_name": "Ada"}, headers=stale)
    changed = await client.patch(
        f"/api/v1/me/tasks/{task['id']}", json={"title": "still changes"}, headers=stale
    )

    assert me.status_code == 200, me.text
    assert me.headers["etag"] == f'"{LAST_32_BIT + 1}"'
    assert changed.status_code == 200, changed.text
    assert (changed.json()["version"], changed.headers["etag"]) == (
        LAST_32_BIT + 1,
        f'"{LAST_32_BIT + 1}"',
    )


@pytest.mark.parametrize("tag", ['"9223372036854775807"', '"99999999999999999999"'])
async def test_an_if_match_beyond_any_version_is_a_412_not_a_500(client, identities, tag):
    headers = identities.headers("user-05")
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200

    response = await client.patch(
        "/api/v1/me", json={"full_name": "Ada"}, headers={**headers, "If-Match": tag}
    )

    assert_problem(response, 412)
