"""The access log names a request's route as the metrics' `handler` label does.

The OpenAPI document, the mounted docs assets and a 413 refused before routing once logged
`route=<unmatched>` while the metrics counted them under their route.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import LogFormat, Settings
from app.core.logging import configure_logging
from app.main import create_app

LIMIT = 1024


@pytest.fixture
async def app_client(database, identity_settings, capsys):
    """An in-process app logging JSON at DEBUG, with a small body limit."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database.url, env="prod", max_request_body_bytes=LIMIT
    )
    app = create_app(settings, identity_settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            capsys.readouterr()
            yield c
    finally:
        configure_logging("INFO", LogFormat.CONSOLE)


def access_routes(output: str) -> list[tuple[str, str, int]]:
    """(method, route, status) of each access log line in `output`."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [(x["method"], x["route"], x["status"]) for x in lines if x.get("event") == "request"]


def counted(metrics: str) -> set[tuple[str, str, int]]:
    """(method, handler, status) of each request the metrics counted."""
    return {
        (sample.labels["method"], sample.labels["handler"], int(sample.labels["status"]))
        for family in text_string_to_metric_families(metrics)
        if family.name == "http_requests"
        for sample in family.samples
        if sample.name == "http_requests_total"
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "route", "status"),
    [
        ("GET", "/docs", b"", "/docs", 200),
        ("GET", "/openapi.json", b"", "/openapi.json", 200),
        ("GET", "/docs/assets/swagger-ui.css", b"", "/docs/assets", 200),
        ("POST", "/api/v1/me/tasks", b"x" * (LIMIT + 1), "/api/v1/me/tasks", 413),
        ("GET", f"/api/v1/me/tasks/{uuid.uuid4()}", b"", "/api/v1/me/tasks/{task_id}", 401),
    ],
    ids=["docs", "openapi", "docs asset", "413", "api route"],
)
async def test_the_access_log_names_the_route_the_metrics_count(
    app_client, capsys, method, path, body, route, status
):
    response = await app_client.request(method, path, content=body)
    logged = access_routes(capsys.readouterr().out)
    metrics = (await app_client.get("/metrics")).text

    assert response.status_code == status, response.text
    assert logged == [(method, route, status)]
    assert (method, route, status) in counted(metrics)


async def test_a_request_no_route_matches_is_unmatched_in_both(app_client, capsys):
    response = await app_client.get("/nowhere")
    logged = access_routes(capsys.readouterr().out)
    metrics = (await app_client.get("/metrics")).text

    assert response.status_code == 404
    assert logged == [("GET", "<unmatched>", 404)]
    assert ("GET", "none", 404) in counted(metrics)
