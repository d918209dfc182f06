"""Optimistic concurrency over HTTP: the entity version as a strong ETag, checked by If-Match."""

from __future__ import annotations

from app.core.errors import PreconditionFailedError

ANY_VERSION = "*"


def etag_for(version: int) -> str:
    """Return the strong ETag of an entity version, such as `"3"`."""
    return f'"{version}"'


def expected_version(if_match: str | None) -> int | None:
    """Parse an `If-Match` header into the version the client expects.

    Args:
        if_match: The header value, or None when the client sent none.

    Returns:
        The expected version, or None when any version is acceptable (no header, or `*`).

    Raises:
        PreconditionFailedError: The header names no version this API ever issues.
    """
    if if_match is None or if_match.strip() == ANY_VERSION:
        return None
    tag = if_match.strip()
    if len(tag) >= 2 and tag[0] == tag[-1] == '"' and tag[1:-1].isdigit():
        return int(tag[1:-1])
    raise PreconditionFailedError('If-Match must be an ETag returned by this API, such as "3".')
