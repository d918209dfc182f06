"""Live reload under `make run`: saving a file under app/ restarts the workers on new code.

The real gunicorn runs the command `python -m app dev` uses, from a copy of app/ in a temporary
folder (the working tree is never edited); no database is needed for what is checked here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.__main__ import DEV_GUNICORN, GUNICORN

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = '"Liveness probe"'
# With the `inotify` dev dependency gunicorn sees a save at once (without it, it polls once a
# second); the worker then drains and a new one boots: 0.6-0.9 s measured here. The bound is
# looser than that so that a loaded machine does not fail a reload that happened.
RELOAD_DEADLINE_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def summaries(base_url: str) -> set[str]:
    document = httpx.get(f"{base_url}/openapi.json", timeout=2).json()
    return {
        operation["summary"] for path in document["paths"].values() for operation in path.values()
    }


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The server as `make run` starts it, serving a copy of app/; yields its URL and the copy."""
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("node_modules"))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "DB_CONNECT_TIMEOUT": "1",
        "OIDC_ISSUER": "https://issuer.example",
        "OIDC_AUDIENCE": "groundwork",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    server = subprocess.Popen(DEV_GUNICORN, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                summaries(base_url)
                break
            except httpx.HTTPError:
                assert server.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not serve within 60 s"
                time.sleep(0.1)
        yield base_url, tmp_path / "app"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_saving_a_file_under_app_serves_the_new_code(dev_server: tuple[str, Path]) -> None:
    base_url, app = dev_server
    assert "Liveness probe" in summaries(base_url)
    routes = app / "health" / "routes.py"
    source = routes.read_text(encoding="utf-8")
    assert SUMMARY in source
    routes.write_text(source.replace(SUMMARY, '"Liveness probe, reloaded"'), encoding="utf-8")
    saved = time.monotonic()
    while "Liveness probe, reloaded" not in summaries_or_nothing(base_url):
        assert time.monotonic() - saved < RELOAD_DEADLINE_SECONDS, "no reload"
        time.sleep(0.05)


def summaries_or_nothing(base_url: str) -> set[str]:
    try:
        return summaries(base_url)
    except httpx.HTTPError:  # between the old worker's exit and the new one's start
        return set()


def test_production_serving_never_reloads() -> None:
    assert "--reload" not in GUNICORN
    assert "--reload" in DEV_GUNICORN
