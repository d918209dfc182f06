"""Settings: typed, from the environment or mounted secret files; errors name the variable only."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.core.config import LogFormat, Settings, SettingsError, get_settings
from app.identity.settings import IdentitySettings, get_identity_settings
from app.main import create_app
from tests.support import PROJECT_ROOT, child_environment

SECRET = "hunter2-do-not-print"
URL = f"postgresql://app:{SECRET}@db.internal:5432/groundwork"
# Enough for the server to trust a provider; nothing is fetched before a token arrives.
IDENTITY = {"OIDC_ISSUER": "https://login.example.com", "OIDC_AUDIENCE": "groundwork"}
APP_ORIGIN = "https://app.example.com"


def run_app(command: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """Run `python -m app command` with `env` over the identity settings; None unsets one."""
    variables = {name: value for name, value in {**IDENTITY, **env}.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-m", "app", command],
        cwd=PROJECT_ROOT,
        env=child_environment(**variables),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_missing_database_url_stops_with_one_line_naming_it(command):
    # Without the identity settings too: migrations never need them, and it is one line.
    result = run_app(command, OIDC_ISSUER=None, OIDC_AUDIENCE=None)

    assert result.returncode == 2
    assert result.stderr == "groundwork: invalid setting DATABASE_URL: is required\n"


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ("migrate", "DB_POOL_SIZE", "0"),
        ("migrate", "DB_POOL_SIZE", "many"),
        ("migrate", "ENV", "production-ish"),
        ("migrate", "LOG_LEVEL", "LOUD"),
        ("serve", "PORT", "70000"),
        ("serve", "WEB_CONCURRENCY", "0"),
    ],
)
def test_invalid_setting_names_the_variable_and_never_the_secret(command, variable, value):
    result = run_app(command, DATABASE_URL=URL, **{variable: value})

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"groundwork: invalid setting {variable}: ")
    assert SECRET not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        (("OIDC_ISSUER",), "OIDC_ISSUER: is required"),
        (("OIDC_AUDIENCE",), "OIDC_AUDIENCE: is required"),
        (("OIDC_ISSUER", "OIDC_AUDIENCE"), "OIDC_ISSUER: is required; OIDC_AUDIENCE: is required"),
    ],
)
def test_the_server_without_a_provider_to_trust_stops_with_one_line(missing, expected):
    result = run_app("serve", DATABASE_URL=URL, **dict.fromkeys(missing))

    assert result.returncode == 2
    assert result.stderr == f"groundwork: invalid setting {expected}\n"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OIDC_ALGORITHMS", "HS256"),
        ("OIDC_ALGORITHMS", "none"),
        ("OIDC_ALGORITHMS", "RS256,HS512"),
        ("OIDC_ALGORITHMS", ","),
        ("OIDC_ISSUER", "login.example.com"),
        ("OIDC_ISSUER", "ftp://login.example.com"),
        ("OIDC_JWKS_URL", "file:///etc/keys.json"),
        ("OIDC_LEEWAY_SECONDS", "301"),
        ("OIDC_JWKS_REFRESH_COOLDOWN_SECONDS", "0"),
        ("OIDC_HTTP_TIMEOUT_SECONDS", "soon"),
        ("CORS_ALLOWED_ORIGINS", "app.example.com"),
        ("CORS_ALLOWED_ORIGINS", f"{APP_ORIGIN}/"),
        ("CORS_ALLOWED_ORIGINS", f"{APP_ORIGIN}, https://x.example.com/path"),
    ],
)
def test_an_invalid_identity_or_cors_setting_stops_the_server_naming_it(variable, value):
    result = run_app("serve", DATABASE_URL=URL, **{variable: value})

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"groundwork: invalid setting {variable}: ")
    assert SECRET not in result.stderr + result.stdout


def test_credentials_with_any_origin_stop_the_server_naming_cors_allow_credentials():
    result = run_app(
        "serve", DATABASE_URL=URL, CORS_ALLOWED_ORIGINS="*", CORS_ALLOW_CREDENTIALS="true"
    )

    assert result.returncode == 2
    assert result.stderr.startswith("groundwork: invalid setting CORS_ALLOW_CREDENTIALS: ")
    assert len(result.stderr.splitlines()) == 1


def test_the_app_without_identity_settings_raises_settings_error(monkeypatch, tmp_path):
    for name in IDENTITY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SECRETS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None, database_url=URL)  # type: ignore[call-arg]
    get_identity_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match=r"^invalid setting OIDC_ISSUER: is required; "):
            create_app(settings)
    finally:
        get_identity_settings.cache_clear()


@pytest.mark.parametrize(
    "bad_url",
    [f"mysql://app:{SECRET}@db/x", f"not a url {SECRET}", f"postgresql://app:{SECRET}@/nohost"],
)
def test_invalid_database_url_is_reported_without_echoing_it(bad_url):
    result = run_app("migrate", DATABASE_URL=bad_url)

    assert result.returncode == 2
    assert result.stderr.startswith("groundwork: invalid setting DATABASE_URL: ")
    assert SECRET not in result.stderr


def test_settings_never_print_secrets():
    settings = Settings(_env_file=None, database_url=URL, database_password=SECRET)  # type: ignore[call-arg]

    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.model_dump())


def test_database_password_replaces_the_urls_password():
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url="postgresql://app@db.internal/groundwork",
        database_password="p@ss:w/rd%",
    )

    url = settings.sqlalchemy_url()

    assert url.drivername == "postgresql+psycopg"
    assert url.password == "p@ss:w/rd%"
    assert url.host == "db.internal"


def test_migrations_use_the_direct_url_when_given():
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url="postgresql://app:x@pooler.neon.tech/db?sslmode=require",
        migration_database_url="postgresql://app:x@direct.neon.tech/db?sslmode=require",
    )

    assert settings.sqlalchemy_url().host == "pooler.neon.tech"
    assert settings.sqlalchemy_url(for_migrations=True).host == "direct.neon.tech"
    assert settings.sqlalchemy_url(for_migrations=True).query == {"sslmode": "require"}


def test_secrets_are_read_from_mounted_files(tmp_path, monkeypatch):
    (tmp_path / "DATABASE_URL").write_text(URL)
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()

    assert settings.database_url == SecretStr(URL)
    assert settings.secret_values() == [SECRET]


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_a_secrets_folder_that_is_not_there_stops_with_one_line(command, tmp_path):
    missing = tmp_path / "not-mounted"

    result = run_app(command, DATABASE_URL=URL, SECRETS_DIR=str(missing))

    assert result.returncode == 2
    assert result.stderr == f"groundwork: invalid setting SECRETS_DIR: {missing} is not a folder\n"


def test_missing_setting_raises_settings_error(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRETS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match="DATABASE_URL: is required"):
            get_settings()
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("env", "expected"),
    [("dev", LogFormat.CONSOLE), ("staging", LogFormat.JSON), ("prod", LogFormat.JSON)],
)
def test_log_format_follows_the_environment(env, expected):
    settings = Settings(_env_file=None, database_url=URL, env=env)  # type: ignore[call-arg]

    assert settings.resolved_log_format is expected


def cors_client(**settings: Any) -> httpx.AsyncClient:
    """An httpx client of an app with `settings` (no lifespan: CORS answers before any route)."""
    identity = IdentitySettings(
        _env_file=None,  # type: ignore[call-arg]
        oidc_issuer=IDENTITY["OIDC_ISSUER"],
        oidc_audience=IDENTITY["OIDC_AUDIENCE"],
    )
    app = create_app(Settings(_env_file=None, database_url=URL, **settings), identity)  # type: ignore[call-arg]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type, if-match",
    }


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name: value
        for name, value in response.headers.items()
        if name.startswith("access-control-")
    }


async def test_an_allowed_origin_may_send_the_token_and_read_the_etag():
    async with cors_client(cors_allowed_origins=APP_ORIGIN) as client:
        allowed = await client.options("/api/v1/me/tasks/1", headers=preflight(APP_ORIGIN))
        refused = await client.get("/api/v1/me", headers={"Origin": APP_ORIGIN})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "PATCH" in allowed.headers["access-control-allow-methods"]
    allowed_headers = allowed.headers["access-control-allow-headers"].lower().split(", ")
    assert {"authorization", "content-type", "if-match"} <= set(allowed_headers)
    assert "access-control-allow-credentials" not in allowed.headers
    # A browser front end can read the 401's challenge and, on success, the ETag.
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = refused.headers["access-control-expose-headers"].lower().split(", ")
    assert {"etag", "location", "www-authenticate"} <= set(exposed)


async def test_another_origin_is_not_allowed():
    async with cors_client(cors_allowed_origins=APP_ORIGIN) as client:
        preflighted = await client.options(
            "/api/v1/me/tasks", headers=preflight("https://evil.example.com")
        )
        sent = await client.get("/api/v1/me", headers={"Origin": "https://evil.example.com"})

    # Starlette still names its methods and headers; without Allow-Origin a browser refuses.
    for response in (preflighted, sent):
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-credentials" not in response.headers
    assert preflighted.status_code == 400


async def test_credentials_are_allowed_only_when_configured():
    async with cors_client(cors_allowed_origins=APP_ORIGIN, cors_allow_credentials=True) as client:
        response = await client.options("/api/v1/me", headers=preflight(APP_ORIGIN))

    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"


async def test_by_default_no_cross_origin_access_at_all():
    async with cors_client() as client:
        preflighted = await client.options("/api/v1/me/tasks", headers=preflight(APP_ORIGIN))
        sent = await client.get("/api/v1/me", headers={"Origin": APP_ORIGIN})

    assert cors_headers(preflighted) == {}
    assert cors_headers(sent) == {}
    assert sent.status_code == 401
