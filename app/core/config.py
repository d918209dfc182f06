"""Typed settings read from the environment, `.env` and mounted secret files."""

from __future__ import annotations

import os
import re
import sys
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# Kubernetes mounts a Secret as one file per key; SECRETS_DIR points at that folder.
SECRETS_DIR_VARIABLE = "SECRETS_DIR"

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 - gunicorn's recommended worker tmp dir
SettingsT = TypeVar("SettingsT", bound=BaseSettings)
_ORIGIN = re.compile(r"^https?://[^/?#\s]+$")


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


# A comma-separated environment variable, read as a tuple of its non-empty items.
CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_list)]


class Environment(StrEnum):
    """Deployment environment; it picks safe defaults such as the log format."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class LogFormat(StrEnum):
    """How log lines are rendered."""

    CONSOLE = "console"
    JSON = "json"


class ServerSettings(BaseSettings):
    """Settings of the gunicorn process model; they need no database."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    web_concurrency: PositiveInt = 2
    graceful_timeout: PositiveInt = 20
    worker_timeout: PositiveInt = 30
    # Longer than common load balancer idle timeouts (60 s) so the proxy closes first.
    keepalive: PositiveInt = 75
    max_requests: Annotated[int, Field(ge=0)] = 10_000
    max_requests_jitter: Annotated[int, Field(ge=0)] = 1_000
    forwarded_allow_ips: str = "127.0.0.1"
    prometheus_multiproc_dir: Path | None = None
    # Request heads, bounded as they arrive (app.server.http): gunicorn's defaults for the
    # line and each header; the whole head, the most one connection makes a worker buffer.
    limit_request_line: PositiveInt = 4094
    limit_request_fields: PositiveInt = 100
    limit_request_field_size: PositiveInt = 8190
    limit_request_head: PositiveInt = 32_768
    # Seconds a connection has to complete a request head before it is closed (slowloris).
    header_read_timeout: PositiveFloat = 10.0
    # Requests one worker runs at once; more are answered 503 at once (/health exempt).
    worker_max_concurrency: PositiveInt = 100
    # Heartbeat files in memory: not on a read-only or slow disk. None: gunicorn's default.
    worker_tmp_dir: Path | None = SHARED_MEMORY if SHARED_MEMORY.is_dir() else None


class Settings(BaseSettings):
    """Application settings. Secrets are `SecretStr` so they never print."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, case_sensitive=False
    )

    env: Environment = Environment.DEV
    app_name: str = "groundwork"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: LogFormat | None = None

    # The runtime role: reads and writes rows, owns nothing (row-level security binds it).
    database_url: SecretStr
    database_password: SecretStr | None = None
    # The owner role that runs migrations; default: DATABASE_URL (a single-role setup).
    migration_database_url: SecretStr | None = None
    migration_database_password: SecretStr | None = None

    # A fixed pool sized to a worker's concurrency: overflow connections are closed as soon
    # as they are returned, so under steady load they would reconnect on every request.
    db_pool_size: PositiveInt = 10
    db_max_overflow: Annotated[int, Field(ge=0)] = 0
    db_pool_timeout: PositiveFloat = 5.0
    db_pool_recycle: PositiveInt = 1800
    # Off: only connections idle for IDLE_PING_AFTER_SECONDS are pinged, which covers a
    # database restart. On: one extra round trip per checkout, for poolers that drop
    # server connections at any time.
    db_pool_pre_ping: bool = False
    db_connect_timeout: PositiveInt = 5
    db_statement_timeout_ms: Annotated[int, Field(ge=0)] = 10_000
    db_pgbouncer: bool = False
    db_health_timeout: PositiveFloat = 1.0

    migration_wait_timeout: PositiveFloat = 60.0
    migration_lock_timeout: PositiveFloat = 120.0

    max_request_body_bytes: PositiveInt = 1_048_576
    # Browser origins allowed to call the API (CORS); empty: no cross-origin access.
    cors_allowed_origins: CommaSeparated = ()
    cors_allow_credentials: bool = False

    @field_validator("database_url", "migration_database_url")
    @classmethod
    def _check_postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            url = make_url(value.get_secret_value())
        except ArgumentError:
            raise ValueError("is not a valid database URL") from None
        if url.get_backend_name() != "postgresql":
            raise ValueError("must be a postgresql:// URL")
        if not url.host and not url.query.get("host"):
            raise ValueError("has no host")
        return value

    @field_validator("cors_allowed_origins")
    @classmethod
    def _check_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(
                    "each origin is scheme://host[:port], such as https://app.example.com"
                )
        return origins

    @field_validator("cors_allow_credentials")
    @classmethod
    def _no_wildcard_with_credentials(cls, allow: bool, info: ValidationInfo) -> bool:
        if allow and "*" in info.data.get("cors_allowed_origins", ()):
            raise ValueError("cannot be on while CORS_ALLOWED_ORIGINS is *")
        return allow

    @property
    def resolved_log_format(self) -> LogFormat:
        """Console lines for people in dev, JSON for machines everywhere else."""
        if self.log_format is not None:
            return self.log_format
        return LogFormat.CONSOLE if self.env is Environment.DEV else LogFormat.JSON

    def sqlalchemy_url(self, *, for_migrations: bool = False) -> URL:
        """Build the async SQLAlchemy URL, with `DATABASE_PASSWORD` applied when set.

        Args:
            for_migrations: Use `MIGRATION_DATABASE_URL` (a direct, unpooled endpoint) if set.

        Returns:
            A `postgresql+psycopg` URL.
        """
        source: SecretStr = self.database_url
        password: SecretStr | None = self.database_password
        if for_migrations:
            source = self.migration_database_url or source
            password = self.migration_database_password or password
        url = make_url(source.get_secret_value()).set(drivername="postgresql+psycopg")
        if password is not None:
            url = url.set(password=password.get_secret_value())
        return url

    def secret_values(self) -> list[str]:
        """Return every secret this process knows, so logs can mask them."""
        secrets: list[str] = []
        for url in (self.database_url, self.migration_database_url):
            if url is not None:
                password = make_url(url.get_secret_value()).password
                if password:
                    secrets.append(str(password))
        for secret in (self.database_password, self.migration_database_password):
            if secret is not None:
                secrets.append(secret.get_secret_value())
        return [secret for secret in secrets if secret]


class SettingsError(SystemExit):
    """A setting is missing or invalid.

    It is a `SystemExit` whose code is one line naming the variable, so an uncaught one
    ends the process with that line on stderr and no traceback.
    """

    def report(self) -> int:
        """Print the one line for people, prefixed with the program name; return exit status 2."""
        print(f"groundwork: {self.code}", file=sys.stderr)
        return 2


def describe_validation_error(error: ValidationError) -> str:
    """Turn a settings validation error into one line that names the variables.

    The offending value is never included, because it may be a secret.

    Args:
        error: The pydantic error raised while reading settings.

    Returns:
        A single line such as `invalid setting DB_POOL_SIZE: Input should be greater than 0`.
    """
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        name = "_".join(str(part) for part in item["loc"]).upper() or "settings"
        message = "is required" if item["type"] == "missing" else item["msg"]
        problems.append(f"{name}: {message}")
    return "invalid setting " + "; ".join(problems)


def read_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Read `settings_class` from the environment, `.env` and `SECRETS_DIR`.

    Raises:
        SettingsError: A setting is missing or invalid (one line naming the variable).
    """
    secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE) or None
    # pydantic-settings only warns and carries on, which would hide a missing Secret mount.
    if secrets_dir is not None and not Path(secrets_dir).is_dir():
        problem = f"{secrets_dir} is not a folder"
        raise SettingsError(f"invalid setting {SECRETS_DIR_VARIABLE}: {problem}")
    try:
        return settings_class(_secrets_dir=secrets_dir)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None


@lru_cache
def get_settings() -> Settings:
    """Read and validate application settings once per process.

    Raises:
        SettingsError: A setting is missing or invalid (it exits with one clear line).
    """
    return read_settings(Settings)


@lru_cache
def get_server_settings() -> ServerSettings:
    """Read and validate the process-model settings once per process."""
    return read_settings(ServerSettings)
