"""Task use cases. Each runs in one transaction acting as the task owner (row-level security)."""

from __future__ import annotations

import uuid

from sqlmodel import col

from app.core.conditional import Precondition
from app.core.errors import NotFoundError
from app.core.schemas import Page, page_of
from app.db.database import Database
from app.db.repository import MissingReferenceError
from app.modules.task.models import Task, TaskStatus
from app.modules.task.repository import TaskRepository
from app.modules.task.schemas import TaskCreate, TaskRead, TaskUpdate
from app.modules.user.repository import UserRepository
from app.modules.user.service import user_not_found


def task_not_found(user_id: uuid.UUID, task_id: uuid.UUID) -> NotFoundError:
    """Return the error for a task the user does not have."""
    return NotFoundError(f"task {task_id} of user {user_id} does not exist")


class TaskService:
    """Create, read, update and delete one user's tasks.

    Until authentication exists, the acting user is the user in the URL; an authenticated
    caller's id replaces it in one place, the `acting_user_id` of each transaction.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def list(
        self, user_id: uuid.UUID, *, status: TaskStatus | None, after: uuid.UUID | None, limit: int
    ) -> Page[TaskRead]:
        """Return one page of the user's tasks in creation order, optionally by status.

        Raises:
            NotFoundError: No such user.
        """
        criteria = [] if status is None else [col(Task.status) == status]
        async with self.database.transaction(acting_user_id=user_id) as connection:
            if await UserRepository(connection).get(user_id) is None:
                raise user_not_found(user_id)
            tasks = await TaskRepository(connection, user_id).page(
                *criteria, after=after, limit=limit
            )
        return page_of(TaskRead, tasks, limit)

    async def get(self, user_id: uuid.UUID, task_id: uuid.UUID) -> TaskRead:
        """Return one of the user's tasks.

        Raises:
            NotFoundError: No such task for this user.
        """
        async with self.database.transaction(acting_user_id=user_id) as connection:
            task = await TaskRepository(connection, user_id).get(task_id)
        if task is None:
            raise task_not_found(user_id, task_id)
        return TaskRead.model_validate(task)

    async def create(self, user_id: uuid.UUID, data: TaskCreate) -> TaskRead:
        """Create a task for the user.

        Raises:
            NotFoundError: No such user.
        """
        try:
            async with self.database.transaction(acting_user_id=user_id) as connection:
                task = await TaskRepository(connection, user_id).add(
                    Task(user_id=user_id, **data.model_dump())
                )
        except MissingReferenceError:
            raise user_not_found(user_id) from None
        return TaskRead.model_validate(task)

    async def update(
        self,
        user_id: uuid.UUID,
        task_id: uuid.UUID,
        data: TaskUpdate,
        precondition: Precondition,
    ) -> TaskRead:
        """Change a task, if it is at a version `precondition` accepts.

        Raises:
            NotFoundError: No such task for this user.
            PreconditionFailedError: The task changed since the client read it.
        """
        async with self.database.transaction(acting_user_id=user_id) as connection:
            task = await TaskRepository(connection, user_id).update(
                task_id, data.changes(), precondition
            )
        if task is None:
            raise task_not_found(user_id, task_id)
        return TaskRead.model_validate(task)

    async def delete(
        self, user_id: uuid.UUID, task_id: uuid.UUID, precondition: Precondition
    ) -> None:
        """Delete one of the user's tasks, if `precondition` accepts its version.

        Raises:
            NotFoundError: No such task for this user.
            PreconditionFailedError: The task changed since the client read it.
        """
        async with self.database.transaction(acting_user_id=user_id) as connection:
            if not await TaskRepository(connection, user_id).delete(task_id, precondition):
                raise task_not_found(user_id, task_id)
