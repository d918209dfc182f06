"""User endpoints: your own profile at `/api/v1/me`; every user, for admins, at `/api/v1/users`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Depends, Response

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
from app.identity.dependencies import Admin, Caller
from app.modules.user.schemas import ProfileUpdate, UserCreate, UserRead, UserUpdate
from app.modules.user.service import UserService

me_router = APIRouter(prefix=f"{API_V1}/me", tags=["me"])
router = APIRouter(prefix=f"{API_V1}/users", tags=["users"])


async def get_user_service(database: Annotated[Database, Depends(get_database)]) -> UserService:
    """Provide the user service for one request."""
    return UserService(database)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]


@me_router.get(
    "", summary="Get your profile", responses=responses(READ_PROBLEMS, tagged_response())
)
async def get_me(caller: Caller, service: UserServiceDep, response: Response) -> UserRead:
    """Return the caller's profile. The first request of a new identity creates it."""
    return tagged(response, await service.me(caller))


@me_router.patch(
    "",
    summary="Update your profile",
    dependencies=JSON_BODY,
    responses=responses(WRITE_PROBLEMS, PRECONDITION_PROBLEMS, tagged_response()),
)
async def update_me(
    body: ProfileUpdate,
    precondition: IfMatch,
    caller: Caller,
    service: UserServiceDep,
    response: Response,
) -> UserRead:
    """Change your display name. With `If-Match`, only if unchanged since you read it (412)."""
    return tagged(response, await service.update_me(caller, body, precondition))


@router.get("", summary="List users", responses=READ_PROBLEMS)
async def list_users(
    admin: Admin,
    service: UserServiceDep,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
) -> Page[UserRead]:
    """List every user in creation order, one keyset page at a time."""
    return await service.list(admin, after=cursor, limit=limit)


@router.get(
    "/{user_id}", summary="Get a user", responses=responses(ITEM_PROBLEMS, tagged_response())
)
async def get_user(
    user_id: CanonicalUUID, admin: Admin, service: UserServiceDep, response: Response
) -> UserRead:
    """Return one user."""
    return tagged(response, await service.get(admin, user_id))


@router.post(
    "",
    summary="Provision a user",
    status_code=HTTPStatus.CREATED,
    dependencies=JSON_BODY,
    responses=responses(
        WRITE_PROBLEMS, tagged_response(HTTPStatus.CREATED, **LOCATION_DOCUMENTATION)
    ),
)
async def create_user(
    body: UserCreate, admin: Admin, service: UserServiceDep, response: Response
) -> UserRead:
    """Create a user before their first sign-in, by issuer and subject (409 if one exists)."""
    user = await service.create(admin, body)
    response.headers["Location"] = router.url_path_for("get_user", user_id=str(user.id))
    return tagged(response, user)


@router.patch(
    "/{user_id}",
    summary="Update or deactivate a user",
    dependencies=JSON_BODY,
    responses=responses(WRITE_PROBLEMS, PRECONDITION_PROBLEMS, tagged_response()),
)
async def update_user(
    user_id: CanonicalUUID,
    body: UserUpdate,
    precondition: IfMatch,
    admin: Admin,
    service: UserServiceDep,
    response: Response,
) -> UserRead:
    """Change the fields sent; `is_active: false` deactivates (their requests then get 403)."""
    return tagged(response, await service.update(admin, user_id, body, precondition))


@router.delete(
    "/{user_id}",
    summary="Delete a user",
    status_code=HTTPStatus.NO_CONTENT,
    responses=responses(ITEM_PROBLEMS, PRECONDITION_PROBLEMS),
)
async def delete_user(
    user_id: CanonicalUUID, precondition: IfMatch, admin: Admin, service: UserServiceDep
) -> None:
    """Delete a user and all of their tasks. With `If-Match`, only if unchanged since (412)."""
    await service.delete(admin, user_id, precondition)
