"""Task DTOs, kept apart from the table model."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, ClassVar

from pydantic import Field

from app.core.schemas import InputModel, IsoDate, PatchModel, ReadModel, StorableStr
from app.modules.task.models import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH, TaskStatus

Title = Annotated[
    StorableStr, Field(min_length=1, max_length=TITLE_MAX_LENGTH, examples=["Write the docs"])
]
Description = Annotated[StorableStr, Field(max_length=DESCRIPTION_MAX_LENGTH)]


class TaskCreate(InputModel):
    """Fields to create a task."""

    title: Title
    description: Description | None = None
    status: TaskStatus = TaskStatus.TODO
    due_date: IsoDate | None = None


class TaskUpdate(PatchModel):
    """Fields to change on a task; omitted ones are kept. `description`, `due_date` may be null."""

    nullable_fields: ClassVar[tuple[str, ...]] = ("description", "due_date")

    title: Title | None = None
    description: Description | None = None
    status: TaskStatus | None = None
    due_date: IsoDate | None = None


class TaskRead(ReadModel):
    """A task as the API returns it."""

    user_id: uuid.UUID
    title: str
    description: str | None
    status: TaskStatus
    due_date: date | None
