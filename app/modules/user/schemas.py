"""User DTOs, kept apart from the table model."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StrictBool

from app.core.schemas import EmailAddress, InputModel, PatchModel, ReadModel, StorableStr
from app.identity.tokens import (
    EMAIL_MAX_LENGTH,
    FULL_NAME_MAX_LENGTH,
    ISSUER_MAX_LENGTH,
    SUBJECT_MAX_LENGTH,
)

Email = Annotated[EmailAddress, Field(max_length=EMAIL_MAX_LENGTH, examples=["ada@example.com"])]
FullName = Annotated[
    StorableStr, Field(min_length=1, max_length=FULL_NAME_MAX_LENGTH, examples=["Ada Lovelace"])
]
Issuer = Annotated[
    StorableStr,
    Field(
        min_length=1,
        max_length=ISSUER_MAX_LENGTH,
        description="The OpenID Provider's issuer; default: the caller's own.",
        examples=["https://login.example.com/realms/groundwork"],
    ),
]
Subject = Annotated[
    StorableStr,
    Field(
        min_length=1,
        max_length=SUBJECT_MAX_LENGTH,
        description="The user's `sub` at that issuer.",
        examples=["248289761001"],
    ),
]


class UserCreate(InputModel):
    """A user to provision before their first sign-in (admin only)."""

    subject: Subject
    issuer: Issuer | None = None
    email: Email | None = None
    full_name: FullName | None = None
    is_active: StrictBool = True


class UserUpdate(PatchModel):
    """Fields an admin may change on a user; omitted fields are kept."""

    nullable_fields: ClassVar[tuple[str, ...]] = ("email", "full_name")

    email: Email | None = None
    full_name: FullName | None = None
    is_active: StrictBool | None = None


class ProfileUpdate(PatchModel):
    """What a user may change on their own profile. The email is the provider's to keep."""

    full_name: FullName | None = None


class UserRead(ReadModel):
    """A user as the API returns it."""

    issuer: str | None = Field(description="Null for a user from before sign-in existed.")
    subject: str | None
    email: str | None
    full_name: str | None
    is_active: bool
