"""RFC 9457 problem details: the one shape of every error response, documented in OpenAPI."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app.core.database_causes import database_cause
from app.core.logging import get_logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://groundwork.dev/problems/"
# Tells clients and load balancers when a 503 is worth retrying.
RETRY_AFTER_SECONDS = "1"
# A busy database already made the request wait its full pool or statement timeout: a retry
# within a second would queue on the same lock or pool. An unreachable one fails fast, and
# the pool reconnects on the first request after it returns.
BUSY_RETRY_AFTER_SECONDS = "5"

logger = get_logger(__name__)


class FieldError(BaseModel):
    """One invalid field of a request."""

    loc: list[str | int] = Field(description="Where the error is: `body`, `query`, `path`, ...")
    msg: str = Field(description="What is wrong, for people.")
    type: str = Field(description="Machine-readable error type.")


class Problem(BaseModel):
    """An RFC 9457 problem details object (`application/problem+json`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "type": f"{PROBLEM_TYPE_BASE}not-found",
                "title": "Not Found",
                "status": 404,
                "detail": "user 0190f3c2-7a41-7c3e-9f1a-2b3c4d5e6f70 does not exist",
                "instance": "/api/v1/users/0190f3c2-7a41-7c3e-9f1a-2b3c4d5e6f70",
                "request_id": "3f0c9d1e2b4a4c5d",
            }
        }
    )

    type: str = Field(description="A URI that identifies the problem type.")
    title: str = Field(description="Short, human-readable summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(default=None, description="Explanation of this occurrence.")
    instance: str | None = Field(default=None, description="The request path.")
    request_id: str | None = Field(default=None, description="Correlates with server logs.")
    errors: list[FieldError] | None = Field(
        default=None, description="Invalid fields, for validation problems."
    )


class AppError(Exception):
    """Base class of errors that map to a problem response."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    slug = "internal-error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def headers(self) -> dict[str, str] | None:
        """Response headers the problem needs, such as `Retry-After` or `WWW-Authenticate`."""
        return None


class NotFoundError(AppError):
    """The addressed resource does not exist (or is not visible to the caller)."""

    status = HTTPStatus.NOT_FOUND
    slug = "not-found"


class ConflictError(AppError):
    """The request conflicts with existing state, such as a duplicate email."""

    status = HTTPStatus.CONFLICT
    slug = "conflict"


class PreconditionFailedError(AppError):
    """The resource is no longer at a version the request's `If-Match` accepts."""

    status = HTTPStatus.PRECONDITION_FAILED
    slug = "precondition-failed"


class UnsupportedMediaTypeError(AppError):
    """The request body is not JSON."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    slug = "unsupported-media-type"


class ServiceUnavailableError(AppError):
    """A dependency (the database, the identity provider) is unreachable or too busy."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    slug = "service-unavailable"
    retry_after_seconds = RETRY_AFTER_SECONDS

    @property
    def headers(self) -> dict[str, str] | None:
        """Tell clients when a retry is worth it."""
        return {"Retry-After": self.retry_after_seconds}


class DatabaseBusyError(ServiceUnavailableError):
    """The database answers but is at a limit: a lock or statement timeout, a full pool."""

    slug = "database-busy"
    retry_after_seconds = BUSY_RETRY_AFTER_SECONDS


class DatabaseUnreachableError(ServiceUnavailableError):
    """The database cannot be reached or refuses this server (down, wrong credentials, TLS)."""

    slug = "database-unreachable"


_SLUGS = {
    HTTPStatus.BAD_REQUEST: "malformed-request",
    HTTPStatus.NOT_FOUND: "not-found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method-not-allowed",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload-too-large",
    HTTPStatus.UNPROCESSABLE_ENTITY: "validation-error",
}


def problem_response(
    request: Request,
    status: HTTPStatus,
    detail: str | None,
    *,
    slug: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Build an `application/problem+json` response for `request`."""
    problem = Problem(
        type=PROBLEM_TYPE_BASE + (slug or _SLUGS.get(status, "error")),
        title=status.phrase,
        status=status.value,
        detail=detail,
        instance=request.url.path,
        request_id=request.scope.get("state", {}).get("request_id"),
        errors=errors,
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status.value,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _field_errors(error: RequestValidationError) -> list[FieldError]:
    return [
        FieldError(loc=list(item["loc"]), msg=item["msg"], type=item["type"])
        for item in error.errors()
    ]


# Starlette types handlers as taking any Exception; it calls each with the class it is
# registered for, hence the casts.
async def _validation_error(request: Request, exception: Exception) -> JSONResponse:
    error = cast(RequestValidationError, exception)
    if any(item["type"] == "json_invalid" for item in error.errors()):
        return problem_response(request, HTTPStatus.BAD_REQUEST, "The body is not valid JSON.")
    return problem_response(
        request,
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "The request has invalid fields.",
        errors=_field_errors(error),
    )


def _documented_methods(request: Request) -> str:
    """List every method the OpenAPI document gives the request's path, for `Allow`."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(request.url.path):
            methods.update(method.upper() for method in operations)
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exception: Exception) -> JSONResponse:
    error = cast(StarletteHTTPException, exception)
    status = HTTPStatus(error.status_code)
    detail = error.detail if isinstance(error.detail, str) else status.description
    headers = dict(error.headers) if error.headers else {}
    if status is HTTPStatus.METHOD_NOT_ALLOWED:
        # Starlette names only the first matching route's method; clients need them all.
        headers["Allow"] = _documented_methods(request)
    return problem_response(request, status, detail, headers=headers or None)


async def _app_error(request: Request, exception: Exception) -> JSONResponse:
    error = cast(AppError, exception)
    return problem_response(
        request, error.status, error.detail, slug=error.slug, headers=error.headers
    )


async def _database_unavailable(request: Request, error: Exception) -> JSONResponse:
    cause = database_cause(error)
    problem: ServiceUnavailableError
    if cause.busy:
        logger.warning("database_busy", cause=cause.phrase)
        reason = (
            "timed out waiting for a database connection"
            if cause.phrase == "pool exhausted"
            else cause.phrase
        )
        problem = DatabaseBusyError(f"The database is busy ({reason}); retry later.")
    else:
        # The cause is for operators (the log, readiness); clients learn only that it is down.
        logger.warning("database_unreachable", cause=cause.phrase)
        problem = DatabaseUnreachableError("The service is unavailable: database unreachable.")
    return await _app_error(request, problem)


def internal_error_response(request: Request) -> JSONResponse:
    """The generic 500 body: details stay in the server log, never in the response."""
    return problem_response(
        request,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "An unexpected error occurred.",
        slug="internal-error",
    )


def database_error_name(error: Exception) -> str:
    """Name the cause of a database error, for logs and 503 reasons (`app.core.database_causes`)."""
    return database_cause(error).phrase


def install_error_handlers(app: FastAPI) -> None:
    """Map expected errors to RFC 9457 problem responses.

    Unexpected exceptions are answered by `RequestContextMiddleware`, which logs them once
    with the request id; Starlette's own `Exception` handler would log them twice.
    """
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)


def problem_responses(*statuses: HTTPStatus) -> dict[int | str, dict[str, Any]]:
    """Document problem responses for a route's `responses=` argument."""
    return {status.value: {"model": Problem, "description": status.phrase} for status in statuses}


def use_problem_media_type(openapi: dict[str, Any]) -> dict[str, Any]:
    """Document 4xx/5xx bodies as `application/problem+json`, which is what they are sent as."""
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return openapi
