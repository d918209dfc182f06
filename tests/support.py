"""Small helpers shared by the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class DatabaseInfo:
    """A test database: the runtime and owner roles' URLs, a superuser's, the runtime password."""

    url: str
    owner_url: str
    admin_url: str
    password: str


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert an RFC 9457 problem response with `status`; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    assert "Traceback" not in response.text
    return body


async def create_user(
    client: httpx.AsyncClient, headers: dict[str, str], subject: str = "ada", **fields: Any
) -> dict[str, Any]:
    """Provision a user by `subject` through the admin API (`headers`: an admin's) and return it."""
    response = await client.post(
        "/api/v1/users",
        json={
            "subject": subject,
            "email": "ada@example.com",
            "full_name": "Ada Lovelace",
            **fields,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def create_task(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    """Create a task as the caller of `headers` (their own, at /api/v1/me/tasks) and return it."""
    response = await client.post(
        "/api/v1/me/tasks", json={"title": "Write the docs", **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def child_environment(**variables: str) -> dict[str, str]:
    """A clean environment for a child process: PATH, coverage's hooks and `variables`.

    Nothing else leaks in from the developer's shell (such as a DATABASE_URL).
    """
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name == "PATH" or name.startswith("COVERAGE_")
    }
    return {**inherited, **variables}


def running_in_ci() -> bool:
    """Whether the suite runs under CI, where a missing tool is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str, how_to_get_it: str) -> str:
    """Return the path of executable `name`, or skip loudly (fail under `CI=true`).

    Args:
        name: The executable to look up on PATH.
        how_to_get_it: The Makefile target or package that installs it, for the message.
    """
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed ({how_to_get_it})"
    if running_in_ci():
        pytest.fail(f"{message}; CI must have it", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {message}")


def wait_until_ok(
    url: str, process: subprocess.Popen[bytes], timeout: float, output: Callable[[], str]
) -> float:
    """Poll `url` until it answers 200 while `process` runs; return the seconds it took.

    Raises:
        AssertionError: The process exited or `url` did not answer 200 in time; the message
            ends with `output()`.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode}:\n{output()}")
        try:
            if httpx.get(url, timeout=1).status_code == httpx.codes.OK:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {timeout} s:\n{output()}")
