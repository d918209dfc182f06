"""The users table: people and machine clients, keyed on their OpenID identity."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field

from app.db.base import EntityBase
from app.identity.tokens import (
    EMAIL_MAX_LENGTH,
    FULL_NAME_MAX_LENGTH,
    ISSUER_MAX_LENGTH,
    SUBJECT_MAX_LENGTH,
)


class User(EntityBase, table=True):
    """A caller of the API, identified by `(issuer, subject)`, never by email (OIDC Core 5.7).

    Row-level security shows a user only their own row; an admin sees every row. Rows made
    before identity existed have no issuer and subject until an operator links them.
    """

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("issuer", "subject"),
        CheckConstraint("(issuer IS NULL) = (subject IS NULL)", name="identity_complete"),
    )

    issuer: str | None = Field(default=None, max_length=ISSUER_MAX_LENGTH)
    subject: str | None = Field(default=None, max_length=SUBJECT_MAX_LENGTH)
    email: str | None = Field(default=None, max_length=EMAIL_MAX_LENGTH)
    full_name: str | None = Field(default=None, max_length=FULL_NAME_MAX_LENGTH)
    is_active: bool = Field(default=True)
