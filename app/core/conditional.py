"""HTTP conditional requests (RFC 9110): an `ETag` on every resource, `If-Match` on changes.

The entity tag of a resource is its `version`, which increases on every change. A client that
sends back the tag it read changes the resource only if nobody changed it since; otherwise
412 Precondition Failed and nothing changes. Without `If-Match` the last write wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Header, Response

ETAG_HEADER = "ETag"
# A strong entity tag as this API issues them: a version number in double quotes.
_VERSION_TAG = re.compile(r'"([1-9][0-9]{0,18})"')
# The version column is a PostgreSQL bigint.
MAX_VERSION = 2**63 - 1

ETAG_DOCUMENTATION = {
    ETAG_HEADER: {
        "description": 'The resource\'s version as a strong entity tag, such as `"3"`. '
        "Send it back in `If-Match` to change the resource only if it is still current.",
        "schema": {"type": "string"},
    }
}
LOCATION_DOCUMENTATION = {
    "Location": {"description": "The URL of the new resource.", "schema": {"type": "string"}}
}


def entity_tag(version: int) -> str:
    """Return the strong entity tag of a resource at `version`."""
    return f'"{version}"'


@dataclass(frozen=True)
class Precondition:
    """The versions an `If-Match` header accepts; `versions` is None when any will do."""

    versions: frozenset[int] | None = None

    @classmethod
    def from_if_match(cls, value: str | None) -> Precondition:
        """Read an `If-Match` header value.

        Absent or `*` accepts any current version. Otherwise only the listed strong tags
        match; weak (`W/`) and malformed tags never do, as RFC 9110's strong comparison says.
        """
        if value is None or value.strip() == "*":
            return cls()
        matches = (_VERSION_TAG.fullmatch(tag.strip()) for tag in value.split(","))
        versions = {int(match.group(1)) for match in matches if match}
        return cls(frozenset(version for version in versions if version <= MAX_VERSION))


async def if_match(
    value: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description="Entity tags (`ETag`) you last read, or `*`. The change applies only "
            "if the resource is still at one of them; otherwise 412 and nothing changes. "
            "Omit it to overwrite (the last write wins).",
        ),
    ] = None,
) -> Precondition:
    """Provide the request's `If-Match` precondition."""
    return Precondition.from_if_match(value)


IfMatch = Annotated[Precondition, Depends(if_match)]


class Versioned(Protocol):
    """A resource with a version."""

    @property
    def version(self) -> int:
        """Increases on every change."""
        ...


VersionedT = TypeVar("VersionedT", bound=Versioned)


def tagged(response: Response, resource: VersionedT) -> VersionedT:
    """Set the `ETag` of `resource` on `response` and return the resource."""
    response.headers[ETAG_HEADER] = entity_tag(resource.version)
    return resource


def tagged_response(
    status: HTTPStatus = HTTPStatus.OK, **headers: dict[str, Any]
) -> dict[int | str, dict[str, Any]]:
    """Document the `ETag` (and any further headers) of a route's success response."""
    return {status.value: {"headers": {**ETAG_DOCUMENTATION, **headers}}}
