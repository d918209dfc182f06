"""/docs and /redoc work offline: headless Chromium renders them from the app's own origin.

The production server serves both pages; Chromium loads each with every host but the loopback
address unresolvable, records every request it makes (a net log), and dumps the DOM once the
page's scripts ran. The page must have rendered the API's operations, its HTML must name no
other origin, and no request may have left for another host.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import require_tool

pytestmark = pytest.mark.slow
RENDER_BUDGET_MS = 15_000
# Markup that only the rendered page has, for operations of every kind of the API.
RENDERED = {
    "/docs": [
        'class="swagger-ui',
        'id="operations-tasks-create_task_api_v1_me_tasks_post"',
        'id="operations-users-list_users_api_v1_users_get"',
        'data-path="/api/v1/me/tasks/{task_id}"',
        "btn authorize",
    ],
    "/redoc": [
        'data-section-id="tag/tasks/operation/create_task_api_v1_me_tasks_post"',
        'data-section-id="tag/users/operation/list_users_api_v1_users_get"',
        "/api/v1/me/tasks/{task_id}",
        "Create a task",
    ],
}
PAGE_SITE = "http://127.0.0.1 "
URL_ATTRIBUTE = re.compile(r"""\b(?:src|href|url|spec-url)\s*[=:]\s*["']([^"']+)["']""")


def render(chromium: str, url: str, workdir: Path) -> tuple[str, list[str]]:
    """Load `url` offline in headless Chromium; return the rendered DOM and every URL requested."""
    net_log = workdir / "net-log.json"
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # the suite runs as root
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            # The browser's own calls about a page (form autofill hints), not the page's.
            "--disable-features=AutofillServerCommunication,OptimizationHints,Translate",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={workdir / 'profile'}",
            f"--log-net-log={net_log}",
            f"--virtual-time-budget={RENDER_BUDGET_MS}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, page_requests(json.loads(net_log.read_text()))


def page_requests(net_log: dict[str, Any]) -> list[str]:
    """The URLs the page itself requested (its network isolation key is the loopback site).

    Chromium's own background requests (component updates, time checks) carry another key
    and are left out: they are the browser's, not the page's.
    """
    start_job = net_log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in net_log["events"]
        if event["type"] == start_job
        and event.get("params", {}).get("network_isolation_key", "").startswith(PAGE_SITE)
    ]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_page_renders_from_the_apps_own_origin(page, server, identity_provider, tmp_path):
    chromium = require_tool("chromium", "make system-packages installs Debian's chromium")
    html = httpx.get(f"{server.base_url}{page}").text

    dom, requested = render(chromium, f"{server.base_url}{page}", tmp_path)

    # The page as served names only paths of this server, never another origin.
    referenced = URL_ATTRIBUTE.findall(html)
    assert referenced, html
    assert [url for url in referenced if not url.startswith("/")] == [], html
    assert "//" not in "".join(referenced)
    for marker in RENDERED[page]:
        assert marker in dom, (marker, dom[-3000:])
    assert f"{server.base_url}{page}" in requested
    assert f"{server.base_url}/openapi.json" in requested
    # Nothing leaves for another host. Swagger UI reads the OpenID Provider's discovery
    # document for its Authorize dialog: the deployment's own issuer, never a CDN.
    elsewhere = [url for url in requested if not url.startswith(f"{server.base_url}/")]
    assert elsewhere == ([identity_provider.discovery_url] if page == "/docs" else [])


def test_a_request_to_another_origin_is_seen(tmp_path):
    # The check itself: a page that loads an image from another host is caught.
    chromium = require_tool("chromium", "make system-packages installs Debian's chromium")
    (tmp_path / "page.html").write_text('<p>hi</p><img src="http://cdn.example.com/x.png">')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as static:
        threading.Thread(target=static.serve_forever, daemon=True).start()
        base_url = f"http://127.0.0.1:{static.server_address[1]}"
        try:
            dom, requested = render(chromium, f"{base_url}/page.html", tmp_path)
        finally:
            static.shutdown()

    assert "<p>hi</p>" in dom
    assert f"{base_url}/page.html" in requested
    assert "http://cdn.example.com/x.png" in requested
