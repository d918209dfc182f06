"""User DTOs, kept apart from the table model."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool

from app.core.schemas import EmailAddress, InputModel, PatchModel, ReadModel, StorableStr
from app.modules.user.models import EMAIL_MAX_LENGTH, FULL_NAME_MAX_LENGTH

Email = Annotated[EmailAddress, Field(max_length=EMAIL_MAX_LENGTH, examples=["ada@example.com"])]
FullName = Annotated[
    StorableStr, Field(min_length=1, max_length=FULL_NAME_MAX_LENGTH, examples=["Ada Lovelace"])
]


class UserCreate(InputModel):
    """Fields to create a user."""

    email: Email
    full_name: FullName
    is_active: StrictBool = True


class UserUpdate(PatchModel):
    """Fields to change on a user; omitted fields are kept."""

    email: Email | None = None
    full_name: FullName | None = None
    is_active: StrictBool | None = None


class UserRead(ReadModel):
    """A user as the API returns it."""

    email: str
    full_name: str
    is_active: bool
