"""Kubernetes probes: `/health` (liveness) and `/health/db` (readiness)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from psycopg.errors import UndefinedTable
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from app.core.errors import ServiceUnavailableError, database_error_name, problem_responses
from app.core.logging import get_logger
from app.db.database import Database
from app.db.dependencies import get_database

router = APIRouter(prefix="/health", tags=["health"])
logger = get_logger(__name__)


class Liveness(BaseModel):
    """The process is up and serving."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """The database answers; `revision` is the applied schema migration."""

    status: Literal["ok"] = "ok"
    revision: str | None


@router.get("", summary="Liveness probe")
async def liveness() -> Liveness:
    """Answer 200 while the process serves.

    It never touches the database, so a database outage cannot make Kubernetes restart
    healthy pods.
    """
    return Liveness()


@router.get(
    "/db",
    summary="Readiness probe",
    responses=problem_responses(HTTPStatus.SERVICE_UNAVAILABLE),
)
async def readiness(database: Annotated[Database, Depends(get_database)]) -> Readiness:
    """Answer 200 with the schema revision when the database answers in time, else 503.

    It recovers by itself when the database returns: the pool replaces dead connections.
    """
    try:
        revision = await database.schema_revision()
    except TimeoutError:
        reason = "the database did not answer in time"
    except SQLAlchemyError as error:
        if isinstance(getattr(error, "orig", None), UndefinedTable):
            # Normal during a first install, until the migration job has run.
            reason = "the database schema is not migrated yet"
        else:
            reason = f"the database is unreachable ({database_error_name(error)})"
    else:
        return Readiness(revision=revision)
    logger.warning("readiness_failed", reason=reason)
    raise ServiceUnavailableError(reason)
