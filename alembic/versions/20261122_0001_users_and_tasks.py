"""users and tasks, with row-level security on tasks

Revision ID: 0001
Revises:
Create Date: 2026-11-22 04:45:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The owner is set per transaction with set_config('app.current_user_id', ..., true);
# without it the setting is empty and no task row is visible or writable.
ACTING_USER = "NULLIF(current_setting('app.current_user_id', true), '')::uuid"


def _entity_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        *_entity_columns(),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)

    op.create_table(
        "tasks",
        *_entity_columns(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "todo",
                "in_progress",
                "done",
                name="task_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_tasks_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index("ix_tasks_user_id_id", "tasks", ["user_id", "id"])
    op.create_index("ix_tasks_user_id_status_id", "tasks", ["user_id", "status", "id"])

    op.execute("ALTER TABLE tasks ENABLE ROW LEVEL SECURITY")
    # FORCE applies the policy to the table owner too, which is often the app's own role.
    op.execute("ALTER TABLE tasks FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tasks_owner_isolation ON tasks "
        f"USING (user_id = {ACTING_USER}) WITH CHECK (user_id = {ACTING_USER})"
    )


def downgrade() -> None:
    op.execute("DROP POLICY tasks_owner_isolation ON tasks")
    op.drop_index("ix_tasks_user_id_status_id", table_name="tasks")
    op.drop_index("ix_tasks_user_id_id", table_name="tasks")
    op.drop_table("tasks")
    op.drop_index("uq_users_email_lower", table_name="users")
    op.drop_table("users")
