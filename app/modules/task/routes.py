"""Task endpoints under `/api/v1/users/{user_id}/tasks`."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.core.api import (
    API_V1,
    ETAG_RESPONSE_HEADER,
    ITEM_PROBLEMS,
    JSON_BODY,
    WRITE_PROBLEMS,
    IfMatch,
    PageCursor,
    PageLimit,
    responses,
    set_etag,
)
from app.core.concurrency import expected_version
from app.core.errors import problem_responses
from app.core.schemas import DEFAULT_PAGE_SIZE, Page
from app.db.database import Database
from app.db.dependencies import get_database
from app.modules.task.models import TaskStatus
from app.modules.task.schemas import TaskCreate, TaskRead, TaskUpdate
from app.modules.task.service import TaskService

router = APIRouter(prefix=f"{API_V1}/users/{{user_id}}/tasks", tags=["tasks"])


def get_task_service(database: Annotated[Database, Depends(get_database)]) -> TaskService:
    """Provide the task service for one request."""
    return TaskService(database)


TaskServiceDep = Annotated[TaskService, Depends(get_task_service)]


@router.get("", summary="List a user's tasks", responses=ITEM_PROBLEMS)
async def list_tasks(
    user_id: uuid.UUID,
    service: TaskServiceDep,
    status: Annotated[TaskStatus | None, Query(description="Only tasks with this status.")] = None,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
) -> Page[TaskRead]:
    """List the user's tasks in creation order, one keyset page at a time."""
    return await service.list(user_id, status=status, after=cursor, limit=limit)


@router.get(
    "/{task_id}",
    summary="Get a task",
    responses=responses(ITEM_PROBLEMS, {200: {"headers": ETAG_RESPONSE_HEADER}}),
)
async def get_task(
    user_id: uuid.UUID, task_id: uuid.UUID, service: TaskServiceDep, response: Response
) -> TaskRead:
    """Return one task; its ETag is the version to send back in `If-Match`."""
    task = await service.get(user_id, task_id)
    set_etag(response, task.version)
    return task


@router.post(
    "",
    summary="Create a task",
    status_code=HTTPStatus.CREATED,
    dependencies=JSON_BODY,
    responses=responses(
        WRITE_PROBLEMS,
        problem_responses(HTTPStatus.NOT_FOUND),
        {201: {"headers": ETAG_RESPONSE_HEADER}},
    ),
)
async def create_task(
    user_id: uuid.UUID,
    body: TaskCreate,
    service: TaskServiceDep,
    request: Request,
    response: Response,
) -> TaskRead:
    """Create a task owned by the user."""
    task = await service.create(user_id, body)
    response.headers["Location"] = request.app.url_path_for(
        "get_task", user_id=str(user_id), task_id=str(task.id)
    )
    set_etag(response, task.version)
    return task


@router.patch(
    "/{task_id}",
    summary="Update a task",
    dependencies=JSON_BODY,
    responses=responses(
        WRITE_PROBLEMS,
        problem_responses(HTTPStatus.NOT_FOUND, HTTPStatus.PRECONDITION_FAILED),
        {200: {"headers": ETAG_RESPONSE_HEADER}},
    ),
)
async def update_task(
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    body: TaskUpdate,
    service: TaskServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> TaskRead:
    """Change the fields sent; with `If-Match`, only if nobody changed the task since (412)."""
    task = await service.update(user_id, task_id, body, expected_version(if_match))
    set_etag(response, task.version)
    return task


@router.delete(
    "/{task_id}",
    summary="Delete a task",
    status_code=HTTPStatus.NO_CONTENT,
    responses=ITEM_PROBLEMS,
)
async def delete_task(user_id: uuid.UUID, task_id: uuid.UUID, service: TaskServiceDep) -> None:
    """Delete one of the user's tasks."""
    await service.delete(user_id, task_id)
