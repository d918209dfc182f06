"""Alembic: one head, round trips, models in step, safe concurrent runs, least-privilege grants.

After every run the runtime role holds exactly what it needs, even when nothing was pending.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from alembic import command
from app.core.config import Settings
from app.db.base import metadata
from app.db.migrations import MigrationError, alembic_config, head_revisions, upgrade_to_head
from tests.conftest import APP_ROLE, OWNER_PASSWORD, create_database
from tests.support import PROJECT_ROOT, DatabaseInfo, child_environment


def migration_config(url: str, runtime_role: str | None = None):
    return alembic_config(
        make_url(url).set(drivername="postgresql+psycopg"), runtime_role=runtime_role
    )


def two_role_settings(info: DatabaseInfo) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=info.url, migration_database_url=info.owner_url
    )


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {name for (name,) in rows}


@pytest.fixture
def empty_database(admin_url, request):
    return create_database(admin_url, f"migrations_{request.node.name[:40].lower()}")


def test_history_has_exactly_one_head():
    assert len(head_revisions()) == 1


def test_upgrade_downgrade_upgrade_round_trip(empty_database):
    config = migration_config(empty_database.owner_url)

    command.upgrade(config, "head")
    assert tables(empty_database.owner_url) == {"alembic_version", "users", "tasks"}
    command.downgrade(config, "base")
    assert tables(empty_database.owner_url) == {"alembic_version"}
    command.upgrade(config, "head")
    assert tables(empty_database.owner_url) == {"alembic_version", "users", "tasks"}


def test_models_and_migrations_agree(database):
    engine = create_engine(make_url(database.url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()

    assert diff == []


def run_migrate(info: DatabaseInfo, **env: str) -> subprocess.Popen[str]:
    urls = {"DATABASE_URL": info.url, "MIGRATION_DATABASE_URL": info.owner_url}
    return subprocess.Popen(
        [sys.executable, "-m", "app", "migrate"],
        cwd=PROJECT_ROOT,
        env=child_environment(ENV="prod", **(urls | env)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_concurrent_runs_both_succeed_and_apply_once(empty_database):
    runners = [run_migrate(empty_database) for _ in range(3)]
    outputs = [runner.communicate(timeout=60)[0] for runner in runners]

    assert [runner.returncode for runner in runners] == [0, 0, 0], outputs
    applied = sum(output.count("Running upgrade  -> 0001") for output in outputs)
    assert applied == 1, outputs
    with psycopg.connect(empty_database.url) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revisions()[0],)
        ]


@pytest.mark.slow
def test_unreachable_database_fails_within_the_wait_with_one_clear_line(empty_database):
    unreachable = make_url(empty_database.owner_url).set(port=1)
    started = time.monotonic()

    runner = run_migrate(
        empty_database,
        MIGRATION_DATABASE_URL=unreachable.render_as_string(hide_password=False),
        MIGRATION_WAIT_TIMEOUT="2",
    )
    output = runner.communicate(timeout=30)[0]

    assert runner.returncode == 1
    assert time.monotonic() - started < 15
    assert '"event": "migrations_failed"' in output
    assert "could not connect to the database within 2 s: connection refused" in output
    assert "Traceback" not in output
    assert empty_database.password not in output
    assert OWNER_PASSWORD not in output


@pytest.fixture
def branched_history(tmp_path) -> Path:
    """A copy of the migrations with two revisions that both follow the head."""
    scripts = tmp_path / "alembic"
    shutil.copytree(PROJECT_ROOT / "alembic", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("a", "b"):
        (scripts / "versions" / f"branch_{name}.py").write_text(
            f'revision = "branch_{name}"\ndown_revision = "{head_revisions()[0]}"\n'
            "branch_labels = None\n"
            "depends_on = None\n\n\ndef upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
        )
    return scripts


def test_several_heads_are_detected_before_touching_the_database(branched_history, database):
    settings = two_role_settings(database)

    assert len(head_revisions(branched_history)) == 2
    with pytest.raises(MigrationError, match="2 heads"):
        upgrade_to_head(settings, branched_history)


def test_a_failing_migration_stops_and_leaves_the_schema_as_it_was(tmp_path, empty_database):
    scripts = tmp_path / "alembic"
    shutil.copytree(PROJECT_ROOT / "alembic", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "broken.py").write_text(
        f'from alembic import op\n\nrevision = "broken"\ndown_revision = "{head_revisions()[0]}"\n'
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n"
        '    op.execute("ALTER TABLE users ADD COLUMN nickname text")\n'
        '    op.execute("ALTER TABLE no_such_table ADD COLUMN x int")\n\n\n'
        "def downgrade():\n    pass\n"
    )
    command.upgrade(migration_config(empty_database.owner_url), "head")

    with pytest.raises(MigrationError, match="migration failed: ProgrammingError"):
        upgrade_to_head(two_role_settings(empty_database), scripts)

    with psycopg.connect(empty_database.owner_url) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revisions()[0],)
        ]
        columns = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"
        ).fetchall()
    assert ("nickname",) not in columns


def table_privileges(info: DatabaseInfo) -> set[tuple[str, str]]:
    with psycopg.connect(info.admin_url) as connection:
        rows = connection.execute(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = %s",
            [APP_ROLE],
        ).fetchall()
    return {(table, privilege) for table, privilege in rows}


def test_the_runtime_role_gets_row_access_only_and_again_when_nothing_is_pending(
    empty_database,
):
    upgrade_to_head(two_role_settings(empty_database))
    with psycopg.connect(empty_database.admin_url, autocommit=True) as connection:
        connection.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")

    upgrade_to_head(two_role_settings(empty_database))  # at head: only the grants run

    rows = {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert table_privileges(empty_database) == {
        *((table, privilege) for table in ("users", "tasks") for privilege in rows),
        ("alembic_version", "SELECT"),
    }


def test_a_single_role_run_warns_that_the_server_could_switch_security_off(empty_database):
    runner = run_migrate(
        empty_database,
        MIGRATION_DATABASE_URL=empty_database.owner_url,
        DATABASE_URL=empty_database.owner_url,
    )
    output = runner.communicate(timeout=60)[0]

    assert runner.returncode == 0, output
    assert '"event": "migrating_as_the_runtime_role"' in output


def test_an_existing_database_keeps_its_rows_through_the_identity_migration(empty_database):
    config = migration_config(empty_database.owner_url)
    command.upgrade(config, "0001")
    with psycopg.connect(empty_database.owner_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO users (id, version, email, full_name, is_active)"
            " VALUES (uuidv7(), 1, 'legacy@example.com', 'Legacy', true)"
        )

    command.upgrade(config, "head")

    with psycopg.connect(empty_database.admin_url) as connection:
        row = connection.execute("SELECT email, issuer, subject FROM users").fetchone()
    assert row == ("legacy@example.com", None, None)
    command.downgrade(config, "0001")
    with psycopg.connect(empty_database.admin_url) as connection:
        assert connection.execute("SELECT email FROM users").fetchall() == [("legacy@example.com",)]
