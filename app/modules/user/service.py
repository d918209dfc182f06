"""User use cases. Each statement acts as the caller (row-level security)."""

from __future__ import annotations

import uuid

from app.core.conditional import Precondition
from app.core.errors import NotFoundError
from app.core.schemas import Page, page_of
from app.db.database import Database
from app.identity.subject import acting_as, resolve
from app.identity.tokens import Principal
from app.modules.user.repository import UserRepository
from app.modules.user.schemas import ProfileUpdate, UserCreate, UserRead, UserUpdate


def user_not_found(user_id: uuid.UUID) -> NotFoundError:
    """Return the error for a user id that does not exist."""
    return NotFoundError(f"user {user_id} does not exist")


class UserService:
    """The caller's own profile, and every user for admins.

    Who may see and change which row is decided by the policies of the `users` table: a
    caller sees only their own row, an admin (the token's role) every row.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def me(self, caller: Principal) -> UserRead:
        """Return the caller's profile, provisioned on their first request."""
        return UserRead.model_validate((await resolve(self.database, caller)).user)

    async def update_me(
        self, caller: Principal, data: ProfileUpdate, precondition: Precondition
    ) -> UserRead:
        """Change the caller's own profile, if it is at a version `precondition` accepts.

        Raises:
            PreconditionFailedError: The profile changed since the client read it.
        """
        async with acting_as(self.database, caller) as connection:
            user_id = (await connection.caller())["id"]
            user = await UserRepository(connection).update(user_id, data.changes(), precondition)
        if user is None:  # deleted by an admin in between
            raise user_not_found(user_id)
        return UserRead.model_validate(user)

    async def list(
        self, caller: Principal, *, after: uuid.UUID | None, limit: int
    ) -> Page[UserRead]:
        """Return one page of users in creation order (admins see everyone)."""
        async with acting_as(self.database, caller) as connection:
            users = await UserRepository(connection).page(after=after, limit=limit)
        return page_of(UserRead, users, limit)

    async def get(self, caller: Principal, user_id: uuid.UUID) -> UserRead:
        """Return one user.

        Raises:
            NotFoundError: No such user (or not one the caller may see).
        """
        async with acting_as(self.database, caller) as connection:
            user = await UserRepository(connection).get(user_id)
        if user is None:
            raise user_not_found(user_id)
        return UserRead.model_validate(user)

    async def create(self, caller: Principal, data: UserCreate) -> UserRead:
        """Provision a user before their first sign-in; the issuer defaults to the caller's.

        Raises:
            ConflictError: A user with this issuer and subject exists.
        """
        fields = data.model_dump() | {"issuer": data.issuer or caller.issuer}
        async with acting_as(self.database, caller) as connection:
            user = await UserRepository(connection).add(fields)
        return UserRead.model_validate(user)

    async def update(
        self, caller: Principal, user_id: uuid.UUID, data: UserUpdate, precondition: Precondition
    ) -> UserRead:
        """Change a user (deactivate with `is_active: false`), if `precondition` accepts.

        Raises:
            NotFoundError: No such user.
            PreconditionFailedError: The user changed since the client read it.
        """
        async with acting_as(self.database, caller) as connection:
            user = await UserRepository(connection).update(user_id, data.changes(), precondition)
        if user is None:
            raise user_not_found(user_id)
        return UserRead.model_validate(user)

    async def delete(
        self, caller: Principal, user_id: uuid.UUID, precondition: Precondition
    ) -> None:
        """Delete a user and, by cascade, their tasks, if `precondition` accepts its version.

        Raises:
            NotFoundError: No such user.
            PreconditionFailedError: The user changed since the client read it.
        """
        async with acting_as(self.database, caller) as connection:
            if not await UserRepository(connection).delete(user_id, precondition):
                raise user_not_found(user_id)
