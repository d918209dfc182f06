"""The users table."""

from __future__ import annotations

from sqlalchemy import Index, func
from sqlmodel import Field

from app.db.base import EntityBase

EMAIL_MAX_LENGTH = 320
FULL_NAME_MAX_LENGTH = 200


class User(EntityBase, table=True):
    """A person who owns tasks. Emails are unique regardless of letter case."""

    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email_lower", func.lower("email"), unique=True),)

    email: str = Field(max_length=EMAIL_MAX_LENGTH)
    full_name: str = Field(max_length=FULL_NAME_MAX_LENGTH)
    is_active: bool = Field(default=True)
