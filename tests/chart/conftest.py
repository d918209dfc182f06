"""Fixtures for the chart tests: the real helm, and rendered value sets."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import pytest

from tests.chart.kube import PROJECT_ROOT, RELEASE, Release, helm_template
from tests.chart.value_sets import OUTSIDE_SECRETS, VALUE_SETS
from tests.support import require_tool

LOCAL_HELM = PROJECT_ROOT / ".tools" / "bin" / "helm"

Render = Callable[..., Release]


@pytest.fixture(scope="session")
def helm() -> str:
    """The helm on PATH, else the pinned one `make tools` installs; skip (CI: fail) without."""
    if shutil.which("helm") is None and LOCAL_HELM.exists():
        return str(LOCAL_HELM)
    return require_tool("helm", "make tools")


@pytest.fixture(scope="session")
def render(helm: str, tmp_path_factory: pytest.TempPathFactory) -> Render:
    """Render the chart with some values (install, or `upgrade=True`) and parse the result."""
    folder = tmp_path_factory.mktemp("values")

    def _render(
        values: dict[str, Any], *, upgrade: bool = False, release: str = RELEASE
    ) -> Release:
        text = helm_template(helm, values, folder, upgrade=upgrade, release=release)
        return Release.parse(text, OUTSIDE_SECRETS)

    return _render


@pytest.fixture(scope="session")
def releases(render: Render) -> dict[str, Release]:
    """Every value set, rendered once."""
    return {name: render(values) for name, values in VALUE_SETS.items()}
