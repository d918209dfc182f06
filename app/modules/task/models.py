"""The tasks table, protected by row-level security on the owner."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum

from sqlalchemy import Date, Enum, Index, Text
from sqlmodel import Field

from app.db.base import EntityBase

TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 10_000


class TaskStatus(StrEnum):
    """Where a task stands."""

    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class Task(EntityBase, table=True):
    """A piece of work owned by one user; deleted with its owner."""

    __tablename__ = "tasks"
    __table_args__ = (
        # Keyset pages per owner, with and without the status filter.
        Index("ix_tasks_user_id_id", "user_id", "id"),
        Index("ix_tasks_user_id_status_id", "user_id", "status", "id"),
    )

    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", nullable=False)
    title: str = Field(max_length=TITLE_MAX_LENGTH)
    description: str | None = Field(default=None, sa_type=Text)
    status: TaskStatus = Field(
        default=TaskStatus.TODO,
        sa_type=Enum(
            TaskStatus,
            name="task_status",
            native_enum=False,
            create_constraint=True,
            length=20,
            values_callable=lambda statuses: [status.value for status in statuses],
        ),
        nullable=False,
    )
    due_date: date | None = Field(default=None, sa_type=Date)
