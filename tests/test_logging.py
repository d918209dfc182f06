"""structlog everywhere: JSON lines in prod, the request id and caller on each, secrets masked."""

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


@pytest.fixture
async def prod_client(database, identity_settings):
    """An in-process app with production logging (JSON), at DEBUG so that nothing hides."""
    settings = Settings(_env_file=None, database_url=database.url, env="prod", log_level="DEBUG")  # type: ignore[call-arg]
    app = create_app(settings, identity_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


def access_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line.get("event") == "request"]


async def test_prod_requests_log_one_json_object_per_line_with_the_request_id(
    prod_client, identities, json_logs
):
    headers = identities.headers("user-00")
    json_logs()
    await prod_client.post(
        "/api/v1/me/tasks",
        json={"title": "logged"},
        headers={**headers, "X-Request-ID": "req-42", "X-Forwarded-For": "203.0.113.9"},
    )

    access = access_lines(json_logs())
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "req-42"
    assert (line["method"], line["route"], line["status"]) == ("POST", "/api/v1/me/tasks", 201)
    assert line["path"] == "/api/v1/me/tasks"
    assert line["subject"] == "user-00"
    assert isinstance(line["duration_ms"], float)
    assert {"timestamp", "level", "logger", "client"} <= set(line)


def tampered(token: str) -> str:
    """The same token with another signature: well-formed, refused, and worth stealing."""
    header, payload, signature = token.split(".")
    return f"{header}.{payload}.{signature[::-1]}"


@pytest.mark.parametrize(
    ("make_token", "status"),
    [
        (lambda token: token, 200),
        (tampered, 401),
        (lambda token: "not-a-jwt-" + token[-20:], 401),
    ],
    ids=["valid", "bad signature", "garbage"],
)
async def test_the_access_log_never_carries_the_token(
    prod_client, identities, json_logs, capsys, make_token, status
):
    token = make_token(identities.token("user-01"))
    json_logs()

    response = await prod_client.get(
        "/api/v1/me/tasks", headers={"Authorization": f"Bearer {token}"}
    )

    output = capsys.readouterr()
    assert response.status_code == status
    assert token not in output.out + output.err
    [line] = access_lines([json.loads(text) for text in output.out.splitlines() if text.strip()])
    assert line["status"] == status
    assert line["subject"] == ("user-01" if status == 200 else None)


async def test_an_unauthenticated_request_is_logged_without_a_subject(prod_client, json_logs):
    json_logs()

    await prod_client.get("/api/v1/me")

    [line] = access_lines(json_logs())
    assert (line["status"], line["subject"]) == (401, None)


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
