"""Data access for users. Row-level security shows a caller their own row, an admin every row."""

from __future__ import annotations

from app.db.repository import Repository
from app.modules.user.models import User


class UserRepository(Repository[User]):
    """Users by id, in keyset pages."""

    model = User
    entity_name = "user"
    duplicate_message = "a user with this issuer and subject already exists"
