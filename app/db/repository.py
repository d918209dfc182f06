"""Generic data access shared by every domain repository: keyset pages and versioned writes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar

from psycopg import errors as pg_errors
from sqlalchemy import ColumnElement, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import ConflictError, NotFoundError, VersionConflictError
from app.db.base import EntityBase, utc_now

EntityT = TypeVar("EntityT", bound=EntityBase)


class MissingReferenceError(NotFoundError):
    """A row refers to a parent row that does not exist."""


class Repository(Generic[EntityT]):
    """Data access for one table. Subclasses set `model` and the names in messages.

    Every statement is limited to `scope` (such as the owner), so a repository built for one
    owner cannot touch another owner's rows even where row-level security is not in force.
    """

    model: ClassVar[type[Any]]
    entity_name: ClassVar[str]
    duplicate_message: ClassVar[str]

    def __init__(self, session: AsyncSession, *scope: ColumnElement[bool]) -> None:
        self.session = session
        self.scope = scope

    async def get(self, entity_id: uuid.UUID) -> EntityT | None:
        """Return the entity with `entity_id`, or None."""
        result = await self.session.exec(
            select(self.model).where(self.model.id == entity_id, *self.scope)
        )
        entity: EntityT | None = result.one_or_none()
        return entity

    async def page(
        self, *criteria: ColumnElement[bool], after: uuid.UUID | None, limit: int
    ) -> list[EntityT]:
        """Return up to `limit + 1` entities ordered by id, starting after the cursor.

        The extra row tells the caller whether another page follows. UUIDv7 ids are
        time-ordered and indexed, so every page costs the same: an index range scan from
        the cursor, never an OFFSET that reads and discards earlier rows.
        """
        statement = (
            select(self.model)
            .where(*self.scope, *criteria)
            .order_by(self.model.id)
            .limit(limit + 1)
        )
        if after is not None:
            statement = statement.where(self.model.id > after)
        result = await self.session.exec(statement)
        return list(result.all())

    async def add(self, entity: EntityT) -> EntityT:
        """Insert `entity`.

        Raises:
            ConflictError: A unique constraint is violated.
            MissingReferenceError: A foreign key names a row that does not exist.
        """
        self.session.add(entity)
        with self._integrity_errors_as_domain_errors():
            await self.session.flush()
        return entity

    async def update(
        self, entity_id: uuid.UUID, changes: dict[str, Any], expected_version: int | None
    ) -> EntityT | None:
        """Apply `changes` atomically and bump the version.

        Args:
            entity_id: The row to change.
            changes: Column values to set.
            expected_version: When given, the row changes only if its version still matches
                (optimistic concurrency); otherwise the last write wins.

        Returns:
            The updated entity, or None when no row has `entity_id`.

        Raises:
            VersionConflictError: The row exists but is no longer at `expected_version`.
            ConflictError: The change violates a unique constraint.
        """
        statement = (
            update(self.model)
            .where(self.model.id == entity_id, *self.scope)
            .values(**changes, version=self.model.version + 1, updated_at=utc_now())
            .returning(self.model)
            .execution_options(synchronize_session=False)
        )
        if expected_version is not None:
            statement = statement.where(self.model.version == expected_version)
        with self._integrity_errors_as_domain_errors():
            result = await self.session.exec(statement)
        entity: EntityT | None = result.scalar_one_or_none()
        if entity is None and expected_version is not None and await self.get(entity_id):
            raise VersionConflictError(
                f"the {self.entity_name} is no longer at version {expected_version}; "
                "read it again and retry"
            )
        return entity

    async def delete(self, entity_id: uuid.UUID) -> bool:
        """Delete the row with `entity_id`; return whether one existed."""
        statement = (
            delete(self.model)
            .where(self.model.id == entity_id, *self.scope)
            .returning(self.model.id)
        )
        result = await self.session.exec(statement)
        return result.scalar_one_or_none() is not None

    @contextmanager
    def _integrity_errors_as_domain_errors(self) -> Iterator[None]:
        try:
            yield
        except IntegrityError as error:
            if isinstance(error.orig, pg_errors.UniqueViolation):
                raise ConflictError(self.duplicate_message) from error
            if isinstance(error.orig, pg_errors.ForeignKeyViolation):
                raise MissingReferenceError(
                    f"the {self.entity_name} refers to a missing row"
                ) from error
            raise
