"""Settings: typed, from the environment or mounted secret files; errors name the variable only."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import SecretStr

from app.core.config import LogFormat, Settings, SettingsError, get_settings
from tests.support import PROJECT_ROOT, child_environment

SECRET = "hunter2-do-not-print"
URL = f"postgresql://app:{SECRET}@db.internal:5432/groundwork"


def run_app(command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", command],
        cwd=PROJECT_ROOT,
        env=child_environment(**env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_missing_database_url_stops_with_one_line_naming_it(command):
    result = run_app(command)

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
