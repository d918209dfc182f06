"""structlog everywhere: JSON lines in prod, the request id on each, secrets masked."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from app.core.config import LogFormat, Settings
from app.core.logging import configure_logging, get_logger, secret_masker
from app.main import create_app


@pytest.fixture
def json_logs(capsys):
    def lines() -> list[dict]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]

    yield lines
    configure_logging("INFO", LogFormat.CONSOLE)


async def test_prod_requests_log_one_json_object_per_line_with_the_request_id(database, json_logs):
    settings = Settings(_env_file=None, database_url=database.url, env="prod")  # type: ignore[call-arg]
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        json_logs()
        await client.post(
            "/api/v1/users",
            json={"email": "log@example.com", "full_name": "L"},
            headers={"X-Request-ID": "req-42", "X-Forwarded-For": "203.0.113.9"},
        )

    access = [line for line in json_logs() if line.get("event") == "request"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "req-42"
    assert (line["method"], line["route"], line["status"]) == ("POST", "/api/v1/users", 201)
    assert line["path"] == "/api/v1/users"
    assert isinstance(line["duration_ms"], float)
    assert {"timestamp", "level", "logger", "client"} <= set(line)


def test_third_party_loggers_are_rendered_by_structlog(json_logs):
    configure_logging("INFO", LogFormat.JSON)

    for name in ("uvicorn.error", "gunicorn.error", "alembic.runtime.migration"):
        logging.getLogger(name).warning("hello from %s", name)
    logging.getLogger("sqlalchemy.engine").info("statement noise is filtered")

    lines = json_logs()
    assert [line["logger"] for line in lines] == [
        "uvicorn.error",
        "gunicorn.error",
        "alembic.runtime.migration",
    ]
    assert lines[0]["event"] == "hello from uvicorn.error"


def test_passwords_in_urls_and_known_secrets_are_masked(json_logs):
    configure_logging("INFO", LogFormat.JSON, secrets=["tok-3x4mpl3"])

    get_logger("test").info(
        "connecting", url="postgresql://app:pa55word@db:5432/x", token="tok-3x4mpl3"
    )
    logging.getLogger("alembic").info("url is postgresql+psycopg://u:p%40ss@h/db")

    text = json.dumps(json_logs())
    assert "pa55word" not in text
    assert "tok-3x4mpl3" not in text
    assert "p%40ss" not in text
    assert "postgresql://app:***@db:5432/x" in text


def test_masker_leaves_passwordless_urls_alone():
    assert secret_masker.mask("postgresql://app@db/x") == "postgresql://app@db/x"


def test_exceptions_are_structured_in_json(json_logs):
    configure_logging("INFO", LogFormat.JSON)
    try:
        raise ValueError("boom")
    except ValueError:
        get_logger("test").exception("failed")

    [line] = json_logs()
    assert line["exception"][0]["exc_type"] == "ValueError"
