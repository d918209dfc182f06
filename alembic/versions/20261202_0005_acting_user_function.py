"""the tasks policy reads the acting user through acting_user_id(), once per scan

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 20:00:00+00:00

The policy compared each row with `NULLIF(current_setting(...), '')::uuid`. PostgreSQL inlines
that expression and evaluates it for every row a scan visits, and it costs it as nearly free:
for a user with many tasks the planner took the primary key in id order and filtered out nine
rows for each row it kept (a user's rows are spread through the table), looking the setting
up and parsing the uuid each time. A page of 50 cost 0.25-0.29 ms of server CPU.

`acting_user_id()` returns the same value from PL/pgSQL, which is never inlined, and is costed
as expensive: the planner now keeps the comparison in the `(user_id, id)` index condition,
evaluated once per scan, and the page reads 51 rows (0.09-0.11 ms of server CPU, first and
deep pages alike; one task, an update and an insert cost the same as before). STABLE, so the
planner still reads the value when it estimates (a big user's pages keep their per-user
estimates) but never builds it into a plan: IMMUTABLE would let a cached plan keep one
caller's id. The users policies keep the expression: they match one row by its key, and an
admin's listing would call the function for every row it visits.
"""

from collections.abc import Sequence

from alembic import context, op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names qualified: the body runs with the caller's search_path.
ACTING_USER_ID = """
CREATE FUNCTION acting_user_id() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE COST 1000 AS $$
BEGIN
    RETURN NULLIF(pg_catalog.current_setting('app.current_user_id', true), '')::pg_catalog.uuid;
END
$$
"""


def _owner_isolation(acting_user: str) -> str:
    return (
        "ALTER POLICY tasks_owner_isolation ON tasks"
        f" USING (user_id = {acting_user}) WITH CHECK (user_id = {acting_user})"
    )


def upgrade() -> None:
    op.execute(ACTING_USER_ID)
    # EXECUTE goes to the runtime role with the other grants (app.db.roles), not to PUBLIC.
    op.execute("REVOKE EXECUTE ON FUNCTION acting_user_id FROM PUBLIC")
    op.execute(_owner_isolation("acting_user_id()"))


def downgrade() -> None:
    tasks = context.script.get_revision("0001")
    if tasks is None:
        raise RuntimeError("revision 0001 is missing from the history")
    op.execute(_owner_isolation(tasks.module.ACTING_USER))
    op.execute("DROP FUNCTION acting_user_id")
