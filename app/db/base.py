"""Metadata with a naming convention, and the columns every table shares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, MetaData, func
from sqlmodel import Field, SQLModel

from app.core.ids import uuid7

# Deterministic constraint names make autogenerate diffs and downgrades reliable.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata: MetaData = SQLModel.metadata
metadata.naming_convention = NAMING_CONVENTION


def utc_now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class EntityBase(SQLModel):
    """Primary key, optimistic-concurrency version and timestamps shared by every table."""

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    # 64-bit: a 32-bit version overflowed after 2**31 - 1 changes (migration 0003).
    version: int = Field(default=1, sa_type=BigInteger, nullable=False)
    created_at: datetime = Field(
        default_factory=utc_now,
        sa_type=DateTime(timezone=True),
        sa_column_kwargs={"server_default": func.now()},
        nullable=False,
    )
    updated_at: datetime = Field(
        default_factory=utc_now,
        sa_type=DateTime(timezone=True),
        sa_column_kwargs={"server_default": func.now()},
        nullable=False,
    )
