"""Data access for tasks. Row-level security limits every query to the acting user."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from app.db.repository import Repository
from app.modules.task.models import Task


class TaskRepository(Repository[Task]):
    """One owner's tasks by id, in keyset pages."""

    model = Task
    entity_name = "task"
    duplicate_message = "the task already exists"

    def __init__(self, connection: AsyncConnection, owner_id: uuid.UUID) -> None:
        super().__init__(connection, col(Task.user_id) == owner_id)
