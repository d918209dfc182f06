"""Task use cases. Each statement acts as the caller (row-level security)."""

from __future__ import annotations

import uuid

from app.core.conditional import Precondition
from app.core.errors import NotFoundError
from app.core.schemas import Page, page_of
from app.db.database import Database
from app.identity.subject import acting_as
from app.identity.tokens import Principal
from app.modules.task.models import TaskStatus
from app.modules.task.repository import TaskRepository
from app.modules.task.schemas import TaskCreate, TaskRead, TaskUpdate


def task_not_found(task_id: uuid.UUID) -> NotFoundError:
    """Return the error for a task the caller does not have."""
    return NotFoundError(f"task {task_id} does not exist")


class TaskService:
    """Create, read, update and delete the caller's own tasks.

    The owner is always the authenticated caller: a task of anybody else is not found,
    both by the repository's filter and by the table's row-level security policy.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def list(
        self,
        caller: Principal,
        *,
        status: TaskStatus | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> Page[TaskRead]:
        """Return one page of the caller's tasks in creation order, optionally by status."""
        equal_to: dict[str, object] = {} if status is None else {"status": status}
        async with acting_as(self.database, caller) as connection:
            tasks = await TaskRepository(connection).page(
                equal_to=equal_to, after=after, limit=limit
            )
        return page_of(TaskRead, tasks, limit)

    async def get(self, caller: Principal, task_id: uuid.UUID) -> TaskRead:
        """Return one of the caller's tasks.

        Raises:
            NotFoundError: The caller has no such task.
        """
        async with acting_as(self.database, caller) as connection:
            task = await TaskRepository(connection).get(task_id)
        if task is None:
            raise task_not_found(task_id)
        return TaskRead.model_validate(task)

    async def create(self, caller: Principal, data: TaskCreate) -> TaskRead:
        """Create a task owned by the caller."""
        async with acting_as(self.database, caller) as connection:
            task = await TaskRepository(connection).add(data.model_dump())
        return TaskRead.model_validate(task)

    async def update(
        self, caller: Principal, task_id: uuid.UUID, data: TaskUpdate, precondition: Precondition
    ) -> TaskRead:
        """Change one of the caller's tasks, if it is at a version `precondition` accepts.

        Raises:
            NotFoundError: The caller has no such task.
            PreconditionFailedError: The task changed since the client read it.
        """
        async with acting_as(self.database, caller) as connection:
            task = await TaskRepository(connection).update(task_id, data.changes(), precondition)
        if task is None:
            raise task_not_found(task_id)
        return TaskRead.model_validate(task)

    async def delete(
        self, caller: Principal, task_id: uuid.UUID, precondition: Precondition
    ) -> None:
        """Delete one of the caller's tasks, if `precondition` accepts its version.

        Raises:
            NotFoundError: The caller has no such task.
            PreconditionFailedError: The task changed since the client read it.
        """
        async with acting_as(self.database, caller) as connection:
            if not await TaskRepository(connection).delete(task_id, precondition):
                raise task_not_found(task_id)
