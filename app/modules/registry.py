"""Every domain's tables on the shared metadata: what Alembic compares and migrates."""

from __future__ import annotations

from sqlalchemy import MetaData

from app.db.base import metadata
from app.modules.task.models import Task
from app.modules.user.models import User

# Importing the models registers their tables on the shared metadata.
MODELS = (User, Task)
target_metadata: MetaData = metadata
