"""Building blocks of request and response DTOs shared by every domain."""

from __future__ import annotations

import re
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


# Deliverability (MX records, reserved names such as example.test) is not the API's
# business: a confirmation mail proves an address, a pattern only its syntax.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# RFC 5321 dot-atom local part @ a domain name: every address it admits is one that any
# `email` format checker admits too, so the schema and the server agree.
EMAIL_PATTERN = rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*$"


LOCAL_PART_MAX_LENGTH = 64
DOMAIN_MAX_LENGTH = 253


# What `_email` enforces, stated for clients as a second pattern: EMAIL_PATTERN admits
# exactly one @, so the parts around it can be measured without lookahead.
EMAIL_LENGTHS_PATTERN = f"^[^@]{{1,{LOCAL_PART_MAX_LENGTH}}}@[^@]{{1,{DOMAIN_MAX_LENGTH}}}$"


def _email(value: str) -> str:
    # RFC 5321 length limits (EMAIL_LENGTHS_PATTERN states them in the schema).
    local, _, domain = value.rpartition("@")
    if len(local) > LOCAL_PART_MAX_LENGTH or len(domain) > DOMAIN_MAX_LENGTH:
        raise ValueError("the part before @ allows 64 characters, the domain 253")
    return f"{local}@{domain.lower()}"


# Strict types where lax coercion would surprise a client (42 -> "42", "yes" -> True).
_CANONICAL_UUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")


def _canonical_uuid(value: object) -> object:
    # The `uuid` format is the hyphenated form; Python would also take 32 bare hex digits.
    if isinstance(value, str) and not _CANONICAL_UUID.match(value):
        raise ValueError("must be a UUID such as 0190f3c2-7a41-7c3e-9f1a-2b3c4d5e6f70")
    return value


CanonicalUUID = Annotated[uuid.UUID, BeforeValidator(_canonical_uuid)]

# What `_storable` enforces, stated for clients: no NUL anywhere in the string. A lone
# surrogate (only an escape such as "\ud800" carries one) is no Unicode text at all, which
# I-JSON (RFC 7493) forbids; a pattern cannot single it out.
STORABLE_PATTERN = "^[^\\u0000]*$"
StorableStr = Annotated[
    StrictStr, AfterValidator(_storable), Field(json_schema_extra={"pattern": STORABLE_PATTERN})
]
EmailAddress = Annotated[
    StrictStr,
    Field(
        pattern=EMAIL_PATTERN,
        json_schema_extra={"format": "email", "allOf": [{"pattern": EMAIL_LENGTHS_PATTERN}]},
    ),
    AfterValidator(_storable),
    AfterValidator(_email),
]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class InputModel(BaseModel):
    """A request body: unknown fields are rejected; field types are strict where it matters."""

    model_config = ConfigDict(extra="forbid")


def _document_patch_schema(schema: dict[str, Any], model_class: type[Any]) -> None:
    """Show omitted-but-not-null fields as plain types and require a field to change."""
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
    # At least one field to change: an empty body changes nothing.
    names = list(schema.get("properties", {}))
    if len(names) == 1:
        schema["required"] = names
    else:
        schema["anyOf"] = [{"required": [name]} for name in names]


class PatchModel(InputModel):
    """A partial update: every field may be omitted, but only `nullable_fields` may be null.

    Omitted fields keep their value. To change a resource only if nobody changed it since
    you read it, send its `ETag` back in `If-Match` (see `app.core.conditional`).
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
        if not self.changes():
            raise ValueError("at least one field to change must be given")
        return self

    def changes(self) -> dict[str, Any]:
        """Return the fields the client wants changed, with their new values."""
        return self.model_dump(exclude_unset=True)


class ReadModel(BaseModel):
    """A resource as the API returns it, built from the table model's attributes."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    version: int = Field(
        description='Increases on every change; the `ETag` header carries it as `"<version>"`.'
    )
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
