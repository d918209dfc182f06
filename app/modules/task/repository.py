"""Data access for tasks. Row-level security limits every query to the acting user."""

from __future__ import annotations

import uuid

from app.db.connection import Connection
from app.db.repository import Repository
from app.modules.task.models import Task


class TaskRepository(Repository[Task]):
    """One owner's tasks by id, in keyset pages."""

    model = Task
    entity_name = "task"
    duplicate_message = "the task already exists"
    scope_columns = ("user_id",)

    def __init__(self, connection: Connection, owner_id: uuid.UUID) -> None:
        super().__init__(connection, owner_id)
