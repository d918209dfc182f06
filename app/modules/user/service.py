"""User use cases, each in one explicit transaction."""

from __future__ import annotations

import uuid

from app.core.conditional import Precondition
from app.core.errors import NotFoundError
from app.core.schemas import Page, page_of
from app.db.database import Database
from app.modules.user.models import User
from app.modules.user.repository import UserRepository
from app.modules.user.schemas import UserCreate, UserRead, UserUpdate


def user_not_found(user_id: uuid.UUID) -> NotFoundError:
    """Return the error for a user id that does not exist."""
    return NotFoundError(f"user {user_id} does not exist")


class UserService:
    """Create, read, update and delete users."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def list(self, *, after: uuid.UUID | None, limit: int) -> Page[UserRead]:
        """Return one page of users in creation order."""
        async with self.database.read() as connection:
            users = await UserRepository(connection).page(after=after, limit=limit)
        return page_of(UserRead, users, limit)

    async def get(self, user_id: uuid.UUID) -> UserRead:
        """Return one user.

        Raises:
            NotFoundError: No such user.
        """
        async with self.database.read() as connection:
            user = await UserRepository(connection).get(user_id)
        if user is None:
            raise user_not_found(user_id)
        return UserRead.model_validate(user)

    async def create(self, data: UserCreate) -> UserRead:
        """Create a user.

        Raises:
            ConflictError: The email is taken (in any letter case).
        """
        async with self.database.transaction() as connection:
            user = await UserRepository(connection).add(User(**data.model_dump()))
        return UserRead.model_validate(user)

    async def update(
        self, user_id: uuid.UUID, data: UserUpdate, precondition: Precondition
    ) -> UserRead:
        """Change a user, if it is at a version `precondition` accepts.

        Raises:
            NotFoundError: No such user.
            PreconditionFailedError: The user changed since the client read it.
            ConflictError: The new email is taken.
        """
        async with self.database.transaction() as connection:
            user = await UserRepository(connection).update(user_id, data.changes(), precondition)
        if user is None:
            raise user_not_found(user_id)
        return UserRead.model_validate(user)

    async def delete(self, user_id: uuid.UUID, precondition: Precondition) -> None:
        """Delete a user and, by cascade, their tasks, if `precondition` accepts its version.

        Raises:
            NotFoundError: No such user.
            PreconditionFailedError: The user changed since the client read it.
        """
        async with self.database.transaction() as connection:
            if not await UserRepository(connection).delete(user_id, precondition):
                raise user_not_found(user_id)
