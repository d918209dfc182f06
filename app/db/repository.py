"""Generic data access shared by every domain repository: keyset pages and versioned writes.

Statements are SQLAlchemy Core over the SQLModel tables, compiled once per shape (which
columns, which filters) and run by `app.db.connection.Connection`; rows come back as plain
dicts, which the read schemas validate directly. A request is one statement or one short
transaction, so the ORM's identity map and unit of work would cost CPU without buying anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Hashable, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar

from psycopg import errors as pg_errors
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    any_,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ClauseElement

from app.core.conditional import Precondition
from app.core.errors import ConflictError, NotFoundError, PreconditionFailedError
from app.db.base import EntityBase, new_row, utc_now
from app.db.connection import Connection, Record, Statement

EntityT = TypeVar("EntityT", bound=EntityBase)

__all__ = ["MissingReferenceError", "Record", "Repository"]


class MissingReferenceError(NotFoundError):
    """A row refers to a parent row that does not exist."""


class Repository(Generic[EntityT]):
    """Data access for one table. Subclasses set `model` and the names in messages.

    Every statement is limited to the `scope`: columns and the SQL values they must have (such
    as the owner being the acting user), which new rows take too. A scoped repository cannot
    touch rows outside it even where row-level security is not in force.
    """

    model: ClassVar[type[Any]]
    entity_name: ClassVar[str]
    duplicate_message: ClassVar[str]
    scope: ClassVar[Mapping[str, ColumnElement[Any]]] = {}
    _statements: ClassVar[dict[Hashable, Statement]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._statements = {}

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    @classmethod
    def table(cls) -> Table:
        """The model's table."""
        table: Table = cls.model.__table__
        return table

    async def get(self, entity_id: uuid.UUID) -> Record | None:
        """Return the row with `entity_id`, or None."""
        statement = self._statement(("get",), lambda: select(self.table()).where(*self._by_id()))
        return await self.connection.fetch_one(statement, {"id": entity_id})

    async def page(
        self, *, equal_to: dict[str, object] | None = None, after: uuid.UUID | None, limit: int
    ) -> Sequence[Record]:
        """Return up to `limit + 1` rows ordered by id, starting after the cursor.

        The extra row tells the caller whether another page follows. UUIDv7 ids are
        time-ordered and indexed, so every page costs the same: an index range scan from
        the cursor, never an OFFSET that reads and discards earlier rows.

        Args:
            equal_to: Only rows whose columns have these values.
            after: The id of the previous page's last row, if any.
            limit: Rows per page.
        """
        filters = equal_to or {}
        shape = ("page", tuple(filters), after is not None)

        def build() -> ClauseElement:
            columns = self.table().c
            criteria = [
                *self._scope(),
                *(columns[name] == bindparam(f"eq_{name}") for name in filters),
            ]
            if after is not None:
                criteria.append(columns.id > bindparam("after"))
            return (
                select(self.table()).where(*criteria).order_by(columns.id).limit(bindparam("limit"))
            )

        values = {f"eq_{name}": value for name, value in filters.items()}
        return await self.connection.fetch_all(
            self._statement(shape, build), {**values, "after": after, "limit": limit + 1}
        )

    async def add(self, values: Mapping[str, Any]) -> Record:
        """Insert a row of `values` over the model's defaults (id, version, times) and return it.

        The scope's columns take the scope's values.

        Raises:
            ConflictError: A unique constraint is violated.
            MissingReferenceError: A foreign key names a row that does not exist.
        """
        values = {
            name: value
            for name, value in new_row(self.model, values).items()
            if name not in self.scope
        }
        statement = self._statement(
            ("add", tuple(values)),
            lambda: (
                insert(self.table())
                .values({**{name: bindparam(name) for name in values}, **self.scope})
                .returning(*self.table().c)
            ),
        )
        with self._integrity_errors_as_domain_errors():
            row = await self.connection.fetch_one(statement, values)
        if row is None:  # INSERT ... RETURNING returns the row it inserted
            raise RuntimeError("the insert returned no row")
        return row

    async def update(
        self, entity_id: uuid.UUID, changes: dict[str, Any], precondition: Precondition
    ) -> Record | None:
        """Apply `changes` atomically and bump the version.

        Args:
            entity_id: The row to change.
            changes: Column values to set.
            precondition: The versions the row may be at (optimistic concurrency); when it
                accepts any, the last write wins.

        Returns:
            The updated row, or None when no row has `entity_id`.

        Raises:
            PreconditionFailedError: The row exists at a version `precondition` rejects.
            ConflictError: The change violates a unique constraint.
        """
        checks_version = precondition.versions is not None

        def build() -> ClauseElement:
            columns = self.table().c
            return (
                update(self.table())
                .where(*self._by_id(), *self._version_check(checks_version))
                .values(
                    {
                        **{name: bindparam(f"set_{name}") for name in changes},
                        "version": columns.version + 1,
                        "updated_at": bindparam("set_updated_at"),
                    }
                )
                .returning(*columns)
            )

        values = {f"set_{name}": value for name, value in changes.items()}
        statement = self._statement(("update", tuple(changes), checks_version), build)
        with self._integrity_errors_as_domain_errors():
            row = await self.connection.fetch_one(
                statement,
                {
                    **values,
                    "id": entity_id,
                    "set_updated_at": utc_now(),
                    "versions": self._versions(precondition),
                },
            )
        if row is None:
            await self._fail_unless_missing(entity_id, precondition)
        return row

    async def delete(self, entity_id: uuid.UUID, precondition: Precondition) -> bool:
        """Delete the row with `entity_id`; return whether one existed.

        Raises:
            PreconditionFailedError: The row exists at a version `precondition` rejects.
        """
        checks_version = precondition.versions is not None
        statement = self._statement(
            ("delete", checks_version),
            lambda: (
                delete(self.table())
                .where(*self._by_id(), *self._version_check(checks_version))
                .returning(self.table().c.id)
            ),
        )
        deleted = await self.connection.fetch_one(
            statement,
            {"id": entity_id, "versions": self._versions(precondition)},
        )
        if deleted is not None:
            return True
        await self._fail_unless_missing(entity_id, precondition)
        return False

    @classmethod
    def _statement(cls, shape: Hashable, build: Callable[[], ClauseElement]) -> Statement:
        statement = cls._statements.get(shape)
        if statement is None:
            statement = cls._statements[shape] = Statement.of(build())
        return statement

    def _scope(self) -> list[ColumnElement[bool]]:
        columns = self.table().c
        return [columns[name] == value for name, value in self.scope.items()]

    def _by_id(self) -> list[ColumnElement[bool]]:
        return [self.table().c.id == bindparam("id"), *self._scope()]

    def _version_check(self, checks_version: bool) -> list[ColumnElement[bool]]:
        if not checks_version:
            return []
        versions = bindparam("versions", type_=ARRAY(BigInteger))
        return [self.table().c.version == any_(versions)]

    @staticmethod
    def _versions(precondition: Precondition) -> list[int] | None:
        return None if precondition.versions is None else sorted(precondition.versions)

    async def _fail_unless_missing(self, entity_id: uuid.UUID, precondition: Precondition) -> None:
        # A missing row is a 404 whatever the precondition says (RFC 9110, section 13.2.1).
        if precondition.versions is not None and await self.get(entity_id):
            raise PreconditionFailedError(
                f"the {self.entity_name} changed since the version in If-Match; "
                "read it again and retry"
            )

    @contextmanager
    def _integrity_errors_as_domain_errors(self) -> Generator[None, None, None]:
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
