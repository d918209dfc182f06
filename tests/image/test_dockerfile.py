"""The Dockerfile's pins agree with the rest of the project (no container engine needed)."""

from __future__ import annotations

import re

from tests.support import PROJECT_ROOT


def pinned(path: str, pattern: str) -> str:
    match = re.search(pattern, (PROJECT_ROOT / path).read_text(), re.MULTILINE)
    assert match, f"no {pattern!r} in {path}"
    return match.group(1)


def test_image_builds_with_the_uv_that_writes_the_lock() -> None:
    # An older uv in the image may not read a lock file written by a newer one.
    assert pinned("Dockerfile", r"^ARG UV_VERSION=(\S+)$") == pinned(
        "Makefile", r"^UV_VERSION := (\S+)$"
    )
