"""Unexpected errors, an unreachable database and an exhausted pool: clear problems, no hangs.

The API calls carry real tokens; the token is checked before the database is touched, so an
authenticated request is what reaches the pool.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.db.migrations import head_revisions
from app.health.routes import Liveness
from app.main import create_app
from tests.conftest import create_database
from tests.support import assert_problem


@pytest.fixture
async def broken_route_client(settings, identity_settings):
    app = create_app(settings, identity_settings)

    async def explode() -> None:
        raise RuntimeError("internal detail that must stay on the server")

    app.add_api_route("/explode", explode, include_in_schema=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as client:
        yield client


async def test_unexpected_error_is_a_generic_500_logged_with_traceback(broken_route_client, capsys):
    response = await broken_route_client.get("/explode", headers={"X-Request-ID": "r-500"})

    body = assert_problem(response, 500)
    assert body["detail"] == "An unexpected error occurred."
    assert "internal detail" not in response.text
    assert response.headers["x-request-id"] == "r-500"
    logged = capsys.readouterr().out
    assert "unhandled_error" in logged
    assert "internal detail that must stay on the server" in logged
    assert "Traceback" in logged or "RuntimeError" in logged


@pytest.fixture
async def unreachable_client(database, identity_settings):
    url = make_url(database.url).set(port=1).render_as_string(hide_password=False)
    settings = Settings(_env_file=None, database_url=url, db_connect_timeout=1)  # type: ignore[call-arg]
    app = create_app(settings, identity_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/me/tasks", "/api/v1/users"])
async def test_unreachable_database_means_503_but_alive(unreachable_client, identities, path):
    liveness = await unreachable_client.get("/health")
    readiness = await unreachable_client.get("/health/db")
    api = await unreachable_client.get(path, headers=identities.admin)
    anonymous = await unreachable_client.get(path)

    assert liveness.status_code == 200
    assert "unreachable" in assert_problem(readiness, 503)["detail"]
    assert_problem(api, 503)
    assert api.headers["retry-after"] == "1"
    assert_problem(anonymous, 401)


async def test_readiness_reports_the_schema_revision(client):
    response = await client.get("/health/db")

    assert response.json() == {"status": "ok", "revision": head_revisions()[0]}


@pytest.fixture
async def tiny_pool_app(database, identity_settings):
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database.url,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout=0.3,
    )
    app = create_app(settings, identity_settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_exhausted_pool_answers_503_after_the_configured_wait(tiny_pool_app, identities):
    transport = httpx.ASGITransport(app=tiny_pool_app)
    headers = identities.headers("user-00")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        # The first token fetches the provider's keys; only the pool's wait is timed below.
        assert (await client.get("/api/v1/me/tasks", headers=headers)).status_code == 200
        async with tiny_pool_app.state.database.single_statement():
            started = asyncio.get_running_loop().time()
            response = await client.get("/api/v1/me/tasks", headers=headers)
            waited = asyncio.get_running_loop().time() - started

    body = assert_problem(response, 503)
    assert "timed out waiting for a database connection" in body["detail"]
    assert 0.25 <= waited < 5
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/api/v1/me/tasks", headers=headers)).status_code == 200


async def test_docs_and_openapi_are_served(client):
    openapi = (await client.get("/openapi.json")).json()

    assert openapi["openapi"].startswith("3.1")
    assert {tag["name"] for tag in openapi["tags"]} == {"me", "users", "tasks", "health"}
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200


async def test_every_api_error_is_documented_as_problem_json(client):
    openapi = (await client.get("/openapi.json")).json()

    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
            assert bool(errors) == (path != "/health"), f"{method} {path}"
            for code, response in errors.items():
                assert list(response["content"]) == ["application/problem+json"], (path, code)
            if path.startswith("/api/"):
                assert {"401", "403", "422", "503"} <= set(errors), (method, path)
                for code in ("401", "403"):
                    assert "WWW-Authenticate" in errors[code]["headers"], (method, path, code)
    assert "Problem" in openapi["components"]["schemas"]
    assert "HTTPValidationError" not in openapi["components"]["schemas"]


async def test_conditional_requests_are_documented(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    items = ["/api/v1/me", "/api/v1/users/{user_id}", "/api/v1/me/tasks/{task_id}"]
    collections = ["/api/v1/users", "/api/v1/me/tasks"]

    for path in items:
        assert "ETag" in paths[path]["get"]["responses"]["200"]["headers"], path
        assert "ETag" in paths[path]["patch"]["responses"]["200"]["headers"], path
        for method in ("patch", "delete") if "delete" in paths[path] else ("patch",):
            operation = paths[path][method]
            assert "412" in operation["responses"], (method, path)
            assert {"name": "If-Match", "in": "header"}.items() <= next(
                parameter for parameter in operation["parameters"] if parameter["in"] == "header"
            ).items()
    for path in collections:
        assert {"ETag", "Location"} <= set(paths[path]["post"]["responses"]["201"]["headers"])


async def test_readiness_says_when_the_schema_is_not_migrated(admin_url, identity_settings):
    empty = create_database(admin_url, "not_migrated")
    settings = Settings(_env_file=None, database_url=empty.url)  # type: ignore[call-arg]
    app = create_app(settings, identity_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        response = await client.get("/health/db")

    assert assert_problem(response, 503)["detail"] == "the database schema is not migrated yet"


async def test_liveness_answers_like_its_documented_route(client, app):
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["content-type"] == "application/json"
    assert Liveness().model_dump_json().encode() == response.content
    assert app.openapi()["paths"]["/health"]["get"]["responses"]["200"]


async def test_concurrent_readiness_probes_share_one_check(client):
    responses = await asyncio.gather(*(client.get("/health/db") for _ in range(20)))

    assert {response.status_code for response in responses} == {200}
