"""Building blocks of request and response DTOs shared by every domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    model_validator,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded as UTF-8.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _iso_date(value: object) -> object:
    # Lax pydantic would read 20260101 as a Unix timestamp; JSON clients send ISO strings.
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date string such as 2026-12-31")
    return value


# Strict types where lax coercion would surprise a client (42 -> "42", "yes" -> True).
StorableStr = Annotated[StrictStr, AfterValidator(_storable)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class InputModel(BaseModel):
    """A request body: unknown fields are rejected; field types are strict where it matters."""

    model_config = ConfigDict(extra="forbid")


def _document_patch_schema(schema: dict[str, Any], model_class: type[Any]) -> None:
    """Show omitted-but-not-null fields as plain types and require at least one field."""
    nullable = getattr(model_class, "nullable_fields", ())
    for name, field_schema in schema.get("properties", {}).items():
        options = field_schema.get("anyOf")
        if name in nullable or not options or {"type": "null"} not in options:
            continue
        remaining = [option for option in options if option != {"type": "null"}]
        del field_schema["anyOf"]
        field_schema.pop("default", None)
        if len(remaining) == 1:
            field_schema.update(remaining[0])
        else:
            field_schema["anyOf"] = remaining
    schema["minProperties"] = 1


class PatchModel(InputModel):
    """A partial update: every field may be omitted, but only `nullable_fields` may be null.

    Omitted fields keep their value; `model_dump(exclude_unset=True)` gives the changes.
    """

    nullable_fields: ClassVar[tuple[str, ...]] = ()
    model_config = ConfigDict(json_schema_extra=_document_patch_schema)

    @model_validator(mode="after")
    def _reject_null_for_required_columns(self) -> PatchModel:
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in type(self).nullable_fields:
                raise ValueError(f"{name} cannot be null")
        return self

    @model_validator(mode="after")
    def _require_a_change(self) -> PatchModel:
        if not self.model_fields_set:
            raise ValueError("at least one field must be given")
        return self

    def changes(self) -> dict[str, Any]:
        """Return the fields the client sent, with their new values."""
        return self.model_dump(exclude_unset=True)


class ReadModel(BaseModel):
    """A resource as the API returns it, built from the table model's attributes."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    version: int = Field(description="Increases on every change; also sent as the ETag.")
    created_at: datetime
    updated_at: datetime


ReadT = TypeVar("ReadT", bound=ReadModel)


class Page(BaseModel, Generic[ReadT]):
    """One page of a keyset-paginated list, in creation order."""

    items: list[ReadT]
    next_cursor: uuid.UUID | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


def page_of(read_model: type[ReadT], rows: Sequence[Any], limit: int) -> Page[ReadT]:
    """Build a page from up to `limit + 1` rows; the extra row only signals a next page."""
    items = [read_model.model_validate(row) for row in rows[:limit]]
    next_cursor = items[-1].id if len(rows) > limit else None
    return Page[read_model](items=items, next_cursor=next_cursor)  # type: ignore[valid-type]
