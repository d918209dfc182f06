"""Command line: `python -m app serve | migrate | dev`."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

# Modules beyond the standard library are imported by the commands that need them: `serve`
# execs gunicorn at once, and anything imported before that only delays readiness.
GUNICORN = [sys.executable, "-m", "gunicorn", "--config", "python:app.server.gunicorn_conf"]
DEV_DATA_DIR = Path(".data/postgres")
DEV_POSTGRES_PORT = int(os.environ.get("EMBEDDED_POSTGRES_PORT", "54329"))
DEV_ROLE = DEV_DATABASE = "groundwork"


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


def dev() -> int:
    """Serve like production, on an embedded PostgreSQL 18 unless `DATABASE_URL` is set."""
    from dotenv import dotenv_values

    postgres = None
    if "DATABASE_URL" not in os.environ and not dotenv_values(".env").get("DATABASE_URL"):
        from app.dev.embedded_postgres import EmbeddedPostgres, ensure_app_database

        postgres = EmbeddedPostgres(DEV_DATA_DIR, DEV_POSTGRES_PORT)
        postgres.start()
        ensure_app_database(postgres.url(), DEV_ROLE, DEV_DATABASE)
        os.environ["DATABASE_URL"] = postgres.url(DEV_ROLE, DEV_DATABASE)
        print(f"embedded PostgreSQL 18 on 127.0.0.1:{DEV_POSTGRES_PORT}, data in {DEV_DATA_DIR}/")
    try:
        if migrate() != 0:
            return 1
        return run_until_stopped(GUNICORN)
    finally:
        if postgres is not None:
            postgres.stop()


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
