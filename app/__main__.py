"""Command line: `python -m app serve | migrate | dev`."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

# Modules beyond the standard library are imported by the commands that need them: `serve`
# execs gunicorn at once, and anything imported before that only delays readiness.
GUNICORN = [sys.executable, "-m", "gunicorn", "--config", "python:app.server.gunicorn_conf"]
# `make run`: a saved file under app/ restarts the workers (gunicorn polls once a second).
DEV_GUNICORN = [*GUNICORN, "--reload"]
DEV_DATA_DIR = Path(".data/postgres")
DEV_POSTGRES_PORT = int(os.environ.get("EMBEDDED_POSTGRES_PORT", "54329"))
# The owner migrates and owns the schema; the server connects as the runtime role.
DEV_OWNER = DEV_DATABASE = "groundwork"
DEV_RUNTIME_ROLE = "groundwork_app"
DEV_OIDC_DIR = Path(".data/oidc")
DEV_OIDC_PORT = int(os.environ.get("DEV_OIDC_PORT", "8900"))
DEV_AUDIENCE = "http://groundwork.local"  # a resource indicator is an absolute URI (RFC 8707)
# Development-only credentials of the local provider's clients; printed for people to use.
DEV_CLIENT_SECRET = "groundwork-dev-secret"  # noqa: S105 - local development only, printed
DEV_SCOPES = "tasks:read tasks:write"


def migrate() -> int:
    """Wait for the database and upgrade it to head; exit non-zero with one line on failure."""
    from app.core.config import get_settings
    from app.core.logging import configure_logging, get_logger
    from app.db.migrations import MigrationError, upgrade_to_head

    settings = get_settings()
    configure_logging(settings.log_level, settings.resolved_log_format, settings.secret_values())
    try:
        upgrade_to_head(settings)
    except MigrationError as error:
        get_logger("groundwork.cli").error("migrations_failed", reason=str(error))
        return 1
    return 0


def serve() -> int:
    """Replace this process with the production gunicorn master (signals reach it directly).

    The master reads and checks the settings in its configuration file before any worker starts.
    """
    os.execv(sys.executable, GUNICORN)  # noqa: S606


def _configured(name: str) -> bool:
    from dotenv import dotenv_values

    return name in os.environ or bool(dotenv_values(".env").get(name))


def _start_embedded_postgres() -> Any:
    from app.dev.embedded_postgres import EmbeddedPostgres, ensure_app_database

    postgres = EmbeddedPostgres(DEV_DATA_DIR, DEV_POSTGRES_PORT)
    postgres.start()
    ensure_app_database(postgres.url(), DEV_DATABASE, DEV_OWNER, DEV_RUNTIME_ROLE)
    os.environ["DATABASE_URL"] = postgres.url(DEV_RUNTIME_ROLE, DEV_DATABASE)
    os.environ["MIGRATION_DATABASE_URL"] = postgres.url(DEV_OWNER, DEV_DATABASE)
    print(f"embedded PostgreSQL 18 on 127.0.0.1:{DEV_POSTGRES_PORT}, data in {DEV_DATA_DIR}/")
    return postgres


def _start_identity_provider() -> Any:
    from app.dev.identity_provider import ClientSpec, DevIdentityProvider

    api = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
    docs_redirects = tuple(
        f"{origin}/docs/oauth2-redirect" for origin in (api, api.replace("127.0.0.1", "localhost"))
    )
    provider = DevIdentityProvider(
        DEV_OIDC_DIR,
        DEV_OIDC_PORT,
        DEV_AUDIENCE,
        [
            ClientSpec("groundwork-cli", DEV_CLIENT_SECRET, DEV_SCOPES),
            ClientSpec("groundwork-admin", DEV_CLIENT_SECRET, DEV_SCOPES, roles=("admin",)),
            ClientSpec(
                "groundwork-docs", None, f"openid profile email {DEV_SCOPES}", (), docs_redirects
            ),
        ],
        account_roles={"admin": ["admin"]},
    )
    provider.start()
    os.environ.update(
        OIDC_ISSUER=provider.issuer,
        OIDC_AUDIENCE=DEV_AUDIENCE,
        OIDC_DOCS_CLIENT_ID="groundwork-docs",
    )
    print(
        f"development OpenID Provider on {provider.issuer}, keys in {DEV_OIDC_DIR}/\n"
        "  a token:  TOKEN=$(curl -s -u groundwork-cli:" + DEV_CLIENT_SECRET + " "
        f"-d grant_type=client_credentials -d 'scope={DEV_SCOPES}' {provider.issuer}/token"
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
        f'  use it:   curl -H "Authorization: Bearer $TOKEN" {api}/api/v1/me/tasks\n'
        f"  browser:  {api}/docs, Authorize, groundwork-docs, any login name"
        " (admin gets the admin role)"
    )
    return provider


def dev() -> int:
    """Serve like production, with what it needs embedded unless it is configured.

    An embedded PostgreSQL 18 unless `DATABASE_URL` is set, and the development OpenID
    Provider unless `OIDC_ISSUER` is set. Authentication is never off: without a provider of
    your own, the local one issues the tokens.
    """
    services = []
    try:
        try:
            if not _configured("DATABASE_URL"):
                services.append(_start_embedded_postgres())
            if not _configured("OIDC_ISSUER"):
                services.append(_start_identity_provider())
        except RuntimeError as error:  # a service that could not start says why in one line
            print(f"groundwork: {error}", file=sys.stderr)
            return 1
        if migrate() != 0:
            return 1
        return run_until_stopped(DEV_GUNICORN)
    finally:
        for service in reversed(services):
            service.stop()


def run_until_stopped(command: list[str]) -> int:
    """Run `command` until it exits; SIGINT or SIGTERM to this process stops it gracefully.

    Ctrl-C signals the whole process group, but an IDE, a process manager or `kill` signals
    this process alone: passing SIGTERM on lets gunicorn drain and take its workers with it,
    instead of leaving them running with no master (and PostgreSQL with no one to stop it).
    """
    server = subprocess.Popen(command)  # noqa: S603

    def stop_server(_signal: int, _frame: object) -> None:
        server.send_signal(signal.SIGTERM)

    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, stop_server)
    return server.wait()


COMMANDS = {"serve": serve, "migrate": migrate, "dev": dev}


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit status."""
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("command", choices=COMMANDS, help="what to run")
    arguments = parser.parse_args(argv)
    if arguments.command == "serve":
        return serve()  # gunicorn replaces this process and reports bad settings itself
    from app.core.config import SettingsError

    try:
        return COMMANDS[arguments.command]()
    except SettingsError as error:
        return error.report()


if __name__ == "__main__":
    sys.exit(main())
