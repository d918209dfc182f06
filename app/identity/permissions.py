"""Every permission the API checks, in one place: scopes a token may carry, and the admin role."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """OAuth scopes (or roles of the same name) that operations require."""

    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"


SCOPE_DESCRIPTIONS = {
    Scope.TASKS_READ: "Read your own tasks.",
    Scope.TASKS_WRITE: "Create, change and delete your own tasks.",
}
