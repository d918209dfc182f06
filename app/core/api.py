"""Pieces every REST route shares: pagination parameters, JSON-only bodies, error docs."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from app.core.errors import UnsupportedMediaTypeError, problem_responses
from app.core.schemas import MAX_PAGE_SIZE, CanonicalUUID

# Path-based versioning: every REST endpoint lives under this prefix.
API_V1 = "/api/v1"

PageLimit = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, at most {MAX_PAGE_SIZE}.")
]
PageCursor = Annotated[
    CanonicalUUID | None,
    Query(description="The `next_cursor` of the previous page; omit for the first page."),
]


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def require_json_body(request: Request) -> None:
    """Reject a body sent with a non-JSON content type (415) before it is parsed."""
    content_type = request.headers.get("content-type")
    if content_type is not None and not _is_json(content_type):
        raise UnsupportedMediaTypeError(f"Send the body as application/json, not {content_type}.")


JSON_BODY = [Depends(require_json_body)]

READ_PROBLEMS = problem_responses(HTTPStatus.UNPROCESSABLE_ENTITY, HTTPStatus.SERVICE_UNAVAILABLE)
ITEM_PROBLEMS = problem_responses(
    HTTPStatus.NOT_FOUND, HTTPStatus.UNPROCESSABLE_ENTITY, HTTPStatus.SERVICE_UNAVAILABLE
)
WRITE_PROBLEMS = problem_responses(
    HTTPStatus.BAD_REQUEST,
    HTTPStatus.CONFLICT,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    HTTPStatus.UNPROCESSABLE_ENTITY,
    HTTPStatus.SERVICE_UNAVAILABLE,
)

# A change with an `If-Match` the resource's version no longer satisfies.
PRECONDITION_PROBLEMS = problem_responses(HTTPStatus.NOT_FOUND, HTTPStatus.PRECONDITION_FAILED)


def responses(*groups: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Merge documented response groups for a route's `responses=` argument."""
    merged: dict[int | str, dict[str, Any]] = {}
    for group in groups:
        merged.update(group)
    return merged
