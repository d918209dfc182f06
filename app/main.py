"""The application factory: `create_app()` builds the app; its lifespan owns every resource."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app.core.config import Settings, get_settings
from app.core.cors import install_cors
from app.core.docs import install_docs, state_servers_and_public_operations
from app.core.errors import database_error_name, install_error_handlers, use_problem_media_type
from app.core.logging import configure_logging, get_logger
from app.core.metrics import install_metrics
from app.core.middleware import (
    BodySizeLimitMiddleware,
    LivenessMiddleware,
    RequestContextMiddleware,
)
from app.db.database import Database
from app.db.pool_metrics import POOL_CAPACITY, POOL_GAUGES
from app.db.roles import role_risks
from app.health.routes import router as health_router
from app.identity.keys import ProviderKeys, identity_http_client
from app.identity.openapi import document_security, swagger_ui_oauth
from app.identity.settings import IdentitySettings, get_identity_settings
from app.identity.tokens import TokenVerifier
from app.modules.task.routes import router as task_router
from app.modules.user.routes import me_router
from app.modules.user.routes import router as user_router

logger = get_logger(__name__)

TAGS = [
    {"name": "me", "description": "The caller's own profile, provisioned on first use."},
    {"name": "tasks", "description": "The caller's own tasks; nobody else sees them."},
    {"name": "users", "description": "Managing every user: the admin role only."},
    {"name": "health", "description": "Kubernetes liveness and readiness probes."},
]


async def _check_database(database: Database) -> None:
    """Log whether the database answers at startup, without failing when it does not.

    A database outage must not crash-loop the pods: readiness reports it and the pool
    reconnects when the database returns.
    """
    try:
        async with database.single_statement() as connection:
            bypasses_rls, owns_tables = await role_risks(connection)
    except SQLAlchemyError as error:
        logger.warning("database_unavailable_at_startup", error=database_error_name(error))
        return
    if bypasses_rls:
        logger.warning(
            "database_role_bypasses_rls",
            hint="connect as a role without SUPERUSER or BYPASSRLS so row-level security applies",
        )
    if owns_tables:
        logger.warning(
            "database_role_owns_tables",
            hint="an owner can switch row-level security off: connect as a runtime role that "
            "owns nothing and migrate as the owner (MIGRATION_DATABASE_URL)",
        )
    logger.info("database_connected")


def create_app(
    settings: Settings | None = None, identity: IdentitySettings | None = None
) -> FastAPI:
    """Build the FastAPI application.

    Args:
        settings: Settings to use; read from the environment when omitted.
        identity: The OpenID Provider to trust; read from the environment when omitted.

    Returns:
        The application. Its lifespan opens the database pool and the identity provider's
        HTTP client, and closes both on shutdown.
    """
    settings = settings or get_settings()
    identity = identity or get_identity_settings()
    configure_logging(settings.log_level, settings.resolved_log_format, settings.secret_values())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
        database = Database(settings)
        app.state.database = database
        await _check_database(database)
        # Keys are fetched on the first token, not here: readiness never waits on the provider.
        async with identity_http_client(identity) as client:
            keys = ProviderKeys(identity, client)
            app.state.identity_settings = identity
            app.state.token_verifier = TokenVerifier(identity, keys)
            try:
                yield
            finally:
                await keys.close()
                await database.dispose()
                logger.info("database_pool_closed")

    app = FastAPI(
        title="Groundwork",
        version=__version__,
        summary="An async FastAPI + PostgreSQL service foundation.",
        description="Errors are RFC 9457 problem details (`application/problem+json`).",
        openapi_tags=TAGS,
        lifespan=lifespan,
        swagger_ui_init_oauth=swagger_ui_oauth(identity),
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    # Added last runs first: the request id and access log wrap everything else.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_request_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    install_metrics(app, settings, *POOL_GAUGES, POOL_CAPACITY)
    install_cors(app, settings)
    app.add_middleware(LivenessMiddleware)
    app.include_router(health_router)
    app.include_router(me_router)
    app.include_router(task_router)
    app.include_router(user_router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            document = document_security(use_problem_media_type(document), identity)
            app.openapi_schema = state_servers_and_public_operations(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
