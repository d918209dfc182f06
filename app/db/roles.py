"""Least-privilege database roles: the owner migrates, the runtime role only reads and writes rows.

The owner runs migrations and owns every table. The server connects as a runtime role that
owns nothing: an owner could `ALTER TABLE ... NO FORCE ROW LEVEL SECURITY` and then see every
row. After each migration run the owner grants the runtime role exactly what the API needs.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from app.db import connection as pooled

# Rows of every table, read-only access to the migration history (readiness reads it), and
# the functions the policies and the caller lookup use. Default privileges cover tables a
# later migration creates before this runs again.
_GRANTS = (
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role}",
    "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema}"
    " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT EXECUTE ON FUNCTIONS TO {role}",
)

# Whether the connected role could switch row-level security off or read past it.
ROLE_RISKS = pooled.Statement.of(
    text(
        """
    SELECT r.rolsuper OR r.rolbypassrls AS bypasses_rls,
           EXISTS (SELECT 1 FROM pg_class c
                   WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p')
                     AND c.relnamespace = current_schema()::regnamespace) AS owns_tables
    FROM pg_roles r WHERE r.rolname = current_user
    """
    )
)


def grant_runtime_privileges(connection: Connection, role: str) -> None:
    """Grant `role` what the server needs on the current schema, and nothing more.

    Idempotent: it runs after every migration run, so privileges follow the schema.

    Args:
        connection: A connection of the owner role, inside the migration transaction.
        role: The runtime role (the user name of `DATABASE_URL`).
    """
    preparer = connection.dialect.identifier_preparer
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    names = {"schema": preparer.quote(schema), "role": preparer.quote(role)}
    for grant in _GRANTS:
        connection.execute(text(grant.format(**names)))


async def role_risks(connection: pooled.Connection) -> tuple[bool, bool]:
    """Return whether the connected role bypasses row-level security, and whether it owns tables."""
    row = await connection.fetch_one(ROLE_RISKS)
    if row is None:  # current_user always has a row in pg_roles
        raise RuntimeError("the connected role is missing from pg_roles")
    return bool(row["bypasses_rls"]), bool(row["owns_tables"])
