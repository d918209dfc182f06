"""User endpoints under `/api/v1/users`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

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
from app.modules.user.schemas import UserCreate, UserRead, UserUpdate
from app.modules.user.service import UserService

router = APIRouter(prefix=f"{API_V1}/users", tags=["users"])


async def get_user_service(database: Annotated[Database, Depends(get_database)]) -> UserService:
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
    "/{user_id}", summary="Get a user", responses=responses(ITEM_PROBLEMS, tagged_response())
)
async def get_user(user_id: CanonicalUUID, service: UserServiceDep, response: Response) -> UserRead:
    """Return one user."""
    return tagged(response, await service.get(user_id))


@router.post(
    "",
    summary="Create a user",
    status_code=HTTPStatus.CREATED,
    dependencies=JSON_BODY,
    responses=responses(
        WRITE_PROBLEMS, tagged_response(HTTPStatus.CREATED, **LOCATION_DOCUMENTATION)
    ),
)
async def create_user(
    body: UserCreate, service: UserServiceDep, request: Request, response: Response
) -> UserRead:
    """Create a user. Emails are unique regardless of letter case (409 otherwise)."""
    user = await service.create(body)
    response.headers["Location"] = request.app.url_path_for("get_user", user_id=str(user.id))
    return tagged(response, user)


@router.patch(
    "/{user_id}",
    summary="Update a user",
    dependencies=JSON_BODY,
    responses=responses(WRITE_PROBLEMS, PRECONDITION_PROBLEMS, tagged_response()),
)
async def update_user(
    user_id: CanonicalUUID,
    body: UserUpdate,
    precondition: IfMatch,
    service: UserServiceDep,
    response: Response,
) -> UserRead:
    """Change the fields sent. With `If-Match`, only if nobody changed the user since (412)."""
    return tagged(response, await service.update(user_id, body, precondition))


@router.delete(
    "/{user_id}",
    summary="Delete a user",
    status_code=HTTPStatus.NO_CONTENT,
    responses=responses(ITEM_PROBLEMS, PRECONDITION_PROBLEMS),
)
async def delete_user(
    user_id: CanonicalUUID, precondition: IfMatch, service: UserServiceDep
) -> None:
    """Delete a user and all of their tasks. With `If-Match`, only if unchanged since (412)."""
    await service.delete(user_id, precondition)
