"""versions are 64-bit: a row at 2,147,483,647 made every further change a 500

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 09:00:00+00:00

A version grows by one on every change. As a 32-bit integer it overflowed at 2**31 - 1 and
the row could never change again; as a bigint it would take 292,000 years at a million
changes a second. Changing the type rewrites both tables under an ACCESS EXCLUSIVE lock: on
large tables run it in a quiet window (it takes seconds per million rows).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "tasks")


def upgrade() -> None:
    for table in TABLES:
        op.alter_column(table, "version", type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    # Fails, changing nothing, while any row is past the 32-bit range.
    for table in TABLES:
        op.alter_column(table, "version", type_=sa.Integer(), existing_nullable=False)
