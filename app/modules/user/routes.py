"""User endpoints under `/api/v1/users`."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.core.api import (
    API_V1,
    ETAG_RESPONSE_HEADER,
    ITEM_PROBLEMS,
    JSON_BODY,
    READ_PROBLEMS,
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
from app.modules.user.schemas import UserCreate, UserRead, UserUpdate
from app.modules.user.service import UserService

router = APIRouter(prefix=f"{API_V1}/users", tags=["users"])


def get_user_service(database: Annotated[Database, Depends(get_database)]) -> UserService:
    """Provide the user service for one request."""
    return UserService(database)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]


@router.get("", summary="List users", responses=READ_PROBLEMS)
async def list_users(
    service: UserServiceDep, limit: PageLimit = DEFAULT_PAGE_SIZE, cursor: PageCursor = None
) -> Page[UserRead]:
    """List users in creation order, one keyset page at a time."""
    return await service.list(after=cursor, limit=limit)


@router.get(
    "/{user_id}",
    summary="Get a user",
    responses=responses(ITEM_PROBLEMS, {200: {"headers": ETAG_RESPONSE_HEADER}}),
)
async def get_user(user_id: uuid.UUID, service: UserServiceDep, response: Response) -> UserRead:
    """Return one user; its ETag is the version to send back in `If-Match`."""
    user = await service.get(user_id)
    set_etag(response, user.version)
    return user


@router.post(
    "",
    summary="Create a user",
    status_code=HTTPStatus.CREATED,
    dependencies=JSON_BODY,
    responses=responses(
        WRITE_PROBLEMS,
        problem_responses(HTTPStatus.CONFLICT),
        {201: {"headers": ETAG_RESPONSE_HEADER}},
    ),
)
async def create_user(
    body: UserCreate, service: UserServiceDep, request: Request, response: Response
) -> UserRead:
    """Create a user. Emails are unique regardless of letter case (409 otherwise)."""
    user = await service.create(body)
    response.headers["Location"] = request.app.url_path_for("get_user", user_id=str(user.id))
    set_etag(response, user.version)
    return user


@router.patch(
    "/{user_id}",
    summary="Update a user",
    dependencies=JSON_BODY,
    responses=responses(
        WRITE_PROBLEMS,
        problem_responses(
            HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT, HTTPStatus.PRECONDITION_FAILED
        ),
        {200: {"headers": ETAG_RESPONSE_HEADER}},
    ),
)
async def update_user(
    user_id: uuid.UUID,
    body: UserUpdate,
    service: UserServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> UserRead:
    """Change the fields sent; with `If-Match`, only if nobody changed the user since (412)."""
    user = await service.update(user_id, body, expected_version(if_match))
    set_etag(response, user.version)
    return user


@router.delete(
    "/{user_id}",
    summary="Delete a user",
    status_code=HTTPStatus.NO_CONTENT,
    responses=ITEM_PROBLEMS,
)
async def delete_user(user_id: uuid.UUID, service: UserServiceDep) -> None:
    """Delete a user and all of their tasks."""
    await service.delete(user_id)
