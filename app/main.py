"""The application factory: `create_app()` builds the app; its lifespan owns every resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app.core.config import Settings, get_settings
from app.core.errors import database_error_name, install_error_handlers, use_problem_media_type
from app.core.logging import configure_logging, get_logger
from app.core.metrics import install_metrics
from app.core.middleware import (
    BodySizeLimitMiddleware,
    LivenessMiddleware,
    RequestContextMiddleware,
)
from app.db.database import Database
from app.health.routes import router as health_router
from app.modules.task.routes import router as task_router
from app.modules.user.routes import router as user_router

logger = get_logger(__name__)

TAGS = [
    {"name": "users", "description": "People who own tasks."},
    {"name": "tasks", "description": "A user's tasks; each user sees only their own."},
    {"name": "health", "description": "Kubernetes liveness and readiness probes."},
]


async def _check_database(database: Database) -> None:
    """Log whether the database answers at startup, without failing when it does not.

    A database outage must not crash-loop the pods: readiness reports it and the pool
    reconnects when the database returns.
    """
    try:
        async with database.engine.connect() as connection:
            role = (
                await connection.execute(
                    text(
                        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
                    )
                )
            ).scalar_one()
    except SQLAlchemyError as error:
        logger.warning("database_unavailable_at_startup", error=database_error_name(error))
        return
    if role:
        logger.warning(
            "database_role_bypasses_rls",
            hint="connect as a role without SUPERUSER or BYPASSRLS so row-level security applies",
        )
    logger.info("database_connected")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI application.

    Args:
        settings: Settings to use; read from the environment when omitted.

    Returns:
        The application. Its lifespan opens the database pool and closes it on shutdown.
    """
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.resolved_log_format, settings.secret_values())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings)
        app.state.database = database
        await _check_database(database)
        try:
            yield
        finally:
            await database.dispose()
            logger.info("database_pool_closed")

    app = FastAPI(
        title="Groundwork",
        version=__version__,
        summary="An async FastAPI + PostgreSQL service foundation.",
        description="Errors are RFC 9457 problem details (`application/problem+json`).",
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    # Added last runs first: the request id and access log wrap everything else.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_request_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    install_metrics(app, settings)
    app.add_middleware(LivenessMiddleware)
    app.include_router(health_router)
    app.include_router(user_router)
    app.include_router(task_router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = use_problem_media_type(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
