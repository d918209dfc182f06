"""Logs carry no user data from SQL parameters, and console lines no raw control bytes."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import Request
from sqlalchemy import text

from app.core.config import LogFormat, Settings
from app.core.logging import configure_logging
from app.db.connection import Statement
from app.main import create_app
from tests.support import assert_problem

USER_DATA = "ada-private-8f3k@example.com"
DIVISION_BY_ZERO = Statement.of(text("SELECT 1 / 0 WHERE :email <> ''"))


@pytest.fixture
async def failing_query_client(database, identity_settings):
    """A production app with a route whose statement fails after binding user data."""
    settings = Settings(_env_file=None, database_url=database.url, env="prod")  # type: ignore[call-arg]
    app = create_app(settings, identity_settings)

    async def divide(request: Request) -> None:
        async with request.app.state.database.single_statement() as connection:
            await connection.fetch_all(DIVISION_BY_ZERO, {"email": USER_DATA})

    app.add_api_route("/divide", divide, include_in_schema=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
        ) as client,
    ):
        yield client
    configure_logging("INFO", LogFormat.CONSOLE)


async def test_a_500_logs_the_statement_but_never_its_parameters(failing_query_client, capsys):
    capsys.readouterr()

    response = await failing_query_client.get("/divide")

    assert_problem(response, 500)
    logged = capsys.readouterr().out
    [error] = [json.loads(line) for line in logged.splitlines() if "unhandled_error" in line]
    assert "division by zero" in json.dumps(error["exception"])
    assert "SELECT 1 / 0" in json.dumps(error["exception"])
    assert USER_DATA not in logged


async def test_the_console_log_escapes_control_bytes_of_a_request_path(client, capsys):
    configure_logging("INFO", LogFormat.CONSOLE)
    capsys.readouterr()

    response = await client.get("/%1b[2J%1b]0;owned%07%7f%c2%9b")

    assert response.status_code == 404
    logged = capsys.readouterr().out
    [line] = [line for line in logged.splitlines() if "request" in line and "owned" in line]
    assert not any(ord(character) < 0x20 or 0x7F <= ord(character) <= 0x9F for character in line)
    assert "\\u001b[2J\\u001b]0;owned\\u0007\\u007f\\u009b" in line
