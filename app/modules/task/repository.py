"""Data access for tasks: the acting user's own, by the repository's scope and by the policy."""

from __future__ import annotations

from types import MappingProxyType

from app.db.repository import Repository
from app.identity.repository import ACTING_USER_ID
from app.modules.task.models import Task


class TaskRepository(Repository[Task]):
    """The acting user's tasks by id, in keyset pages; new tasks are theirs."""

    model = Task
    entity_name = "task"
    duplicate_message = "the task already exists"
    scope = MappingProxyType({"user_id": ACTING_USER_ID})
