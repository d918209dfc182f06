"""The caller's own task endpoints under `/api/v1/me/tasks`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.core.api import (
    API_V1,
    ITEM_PROBLEMS,
    JSON_BODY,
    PRECONDITION_PROBLEMS,
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    PageCursor,
    PageLimit,
    responses,
)
from app.core.conditional import LOCATION_DOCUMENTATION, IfMatch, tagged, tagged_response
from app.core.schemas import DEFAULT_PAGE_SIZE, CanonicalUUID, Page
from app.db.database import Database
from app.db.dependencies import get_database
from app.identity.dependencies import TaskReader, TaskWriter
from app.modules.task.models import TaskStatus
from app.modules.task.schemas import TaskCreate, TaskRead, TaskUpdate
from app.modules.task.service import TaskService

router = APIRouter(prefix=f"{API_V1}/me/tasks", tags=["tasks"])


async def get_task_service(database: Annotated[Database, Depends(get_database)]) -> TaskService:
    """Provide the task service for one request."""
    return TaskService(database)


TaskServiceDep = Annotated[TaskService, Depends(get_task_service)]


@router.get("", summary="List your tasks", responses=READ_PROBLEMS)
async def list_tasks(
    caller: TaskReader,
    service: TaskServiceDep,
    status: Annotated[TaskStatus | None, Query(description="Only tasks with this status.")] = None,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
) -> Page[TaskRead]:
    """List your tasks in creation order, one keyset page at a time."""
    return await service.list(caller, status=status, after=cursor, limit=limit)


@router.get(
    "/{task_id}", summary="Get a task", responses=responses(ITEM_PROBLEMS, tagged_response())
)
async def get_task(
    task_id: CanonicalUUID, caller: TaskReader, service: TaskServiceDep, response: Response
) -> TaskRead:
    """Return one of your tasks."""
    return tagged(response, await service.get(caller, task_id))


@router.post(
    "",
    summary="Create a task",
    status_code=HTTPStatus.CREATED,
    dependencies=JSON_BODY,
    responses=responses(
        WRITE_PROBLEMS, tagged_response(HTTPStatus.CREATED, **LOCATION_DOCUMENTATION)
    ),
)
async def create_task(
    body: TaskCreate,
    caller: TaskWriter,
    service: TaskServiceDep,
    response: Response,
) -> TaskRead:
    """Create a task that you own."""
    task = await service.create(caller, body)
    response.headers["Location"] = router.url_path_for("get_task", task_id=str(task.id))
    return tagged(response, task)


@router.patch(
    "/{task_id}",
    summary="Update a task",
    dependencies=JSON_BODY,
    responses=responses(WRITE_PROBLEMS, PRECONDITION_PROBLEMS, tagged_response()),
)
async def update_task(
    task_id: CanonicalUUID,
    body: TaskUpdate,
    precondition: IfMatch,
    caller: TaskWriter,
    service: TaskServiceDep,
    response: Response,
) -> TaskRead:
    """Change the fields sent. With `If-Match`, only if nobody changed the task since (412)."""
    return tagged(response, await service.update(caller, task_id, body, precondition))


@router.delete(
    "/{task_id}",
    summary="Delete a task",
    status_code=HTTPStatus.NO_CONTENT,
    responses=responses(ITEM_PROBLEMS, PRECONDITION_PROBLEMS),
)
async def delete_task(
    task_id: CanonicalUUID, precondition: IfMatch, caller: TaskWriter, service: TaskServiceDep
) -> None:
    """Delete one of your tasks. With `If-Match`, only if unchanged since (412)."""
    await service.delete(caller, task_id, precondition)
