"""The API contract: the committed OpenAPI document, its lint, the TypeScript client built on it.

clients/openapi.json must be exactly what the app produces (as `alembic check` does for the
schema, a stale one fails until `make client` regenerates it), pass Redocly's recommended rules
with only the reasoned exceptions, and clients/typescript/ must compile with `tsc --strict`
and drive the production server through the typed client (a Node program, src/tour.ts).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.dev.identity_provider import node_executable
from clients.openapi import DOCUMENT_PATH, PLACEHOLDER_ISSUER, app_document, render
from tests.support import PROJECT_ROOT, child_environment, running_in_ci

CLIENT_DIR = PROJECT_ROOT / "clients" / "typescript"
NODE_MODULES = CLIENT_DIR / "node_modules"
REDOCLY_CONFIG = PROJECT_ROOT / "clients" / "redocly.yaml"
REDOCLY_IGNORES = PROJECT_ROOT / "clients" / ".redocly.lint-ignore.yaml"
REGENERATE = "run `make client` and commit the result"


def npm_tool(script: str) -> list[str]:
    """The command that runs `script` of an installed npm package on the wheel's Node."""
    path = NODE_MODULES / script
    if not path.is_file():
        message = f"{path.relative_to(PROJECT_ROOT)} is missing: run `make client-tools`"
        if running_in_ci():
            pytest.fail(f"{message}; CI must have it", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    return [node_executable(), str(path)]


def run(command: list[str], cwd: Path = CLIENT_DIR, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `command` without the network-chatty defaults of the npm tools; never raise."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=child_environment(
            REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true", **env
        ),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_committed_document_is_the_apps():
    assert DOCUMENT_PATH.read_text(encoding="utf-8") == render(app_document()), REGENERATE


def test_the_committed_types_are_generated_from_the_committed_document(tmp_path):
    generated = tmp_path / "schema.ts"

    result = run(
        [*npm_tool("openapi-typescript/bin/cli.js"), str(DOCUMENT_PATH), "-o", str(generated)]
    )

    assert result.returncode == 0, result.stderr
    assert (CLIENT_DIR / "src" / "schema.ts").read_text() == generated.read_text(), REGENERATE


def test_redocly_finds_nothing_but_the_reasoned_exceptions():
    result = run(
        [
            *npm_tool("@redocly/cli/bin/cli.js"),
            "lint",
            str(DOCUMENT_PATH),
            f"--config={REDOCLY_CONFIG}",
            "--format=json",
        ]
    )
    report = json.loads(result.stdout)
    allowed = yaml.safe_load(REDOCLY_IGNORES.read_text())["openapi.json"]

    assert report["problems"] == [], result.stdout
    assert report["totals"] == {
        "errors": 0,
        "warnings": 0,
        # Every exception still matches a problem: a fixed one must leave the list.
        "ignored": sum(len(pointers) for pointers in allowed.values()),
    }
    assert result.returncode == 0, result.stderr


def test_the_client_compiles_with_tsc_strict():
    result = run([*npm_tool("typescript/bin/tsc"), "--strict", "--noEmit", "-p", "."])

    assert result.returncode == 0, result.stdout + result.stderr


def test_tsc_rejects_a_call_the_document_does_not_allow(tmp_path):
    # The same compiler settings on a program that breaks the contract in three ways.
    (tmp_path / "tsconfig.json").write_text(
        json.dumps(
            {
                "extends": str(CLIENT_DIR / "tsconfig.json"),
                "compilerOptions": {"typeRoots": [str(NODE_MODULES / "@types")]},
                "include": ["wrong.mts"],
            }
        )
    )
    (tmp_path / "wrong.mts").write_text(
        f'import {{ createGroundworkClient }} from "{CLIENT_DIR / "src" / "index.ts"}";\n'
        'const client = createGroundworkClient({ baseUrl: "/", token: "t" });\n'
        'await client.POST("/api/v1/me/tasks", { body: { title: 42 } });\n'
        'await client.GET("/api/v1/me/tasks", { params: { query: { status: "someday" } } });\n'
        'await client.GET("/api/v1/tasks");\n'
    )

    result = run([*npm_tool("typescript/bin/tsc"), "--noEmit", "-p", "."], cwd=tmp_path)

    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if "error TS" in line]
    assert [line.split("(")[1].split(",")[0] for line in errors] == ["3", "4", "5"], errors


@pytest.mark.slow
def test_the_typescript_tour_runs_against_the_production_server(
    server, identities, identity_provider
):
    result = run(
        [node_executable(), "src/tour.ts"],
        GROUNDWORK_URL=server.base_url,
        GROUNDWORK_TOKEN=identities.token("user-11"),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    tour: dict[str, Any] = json.loads(result.stdout)
    assert tour["subject"] == "user-11"
    # Five tasks, two a page, in creation order: the cursor visits each once.
    assert [len(page) for page in tour["pages"]] == [2, 2, 1]
    assert [task for page in tour["pages"] for task in page] == tour["created"]
    assert tour["changed"] == {"status": "done", "etag": '"2"'}
    assert tour["etag"] == '"1"'
    assert tour["stale"]["status"] == 412
    assert tour["stale"]["contentType"] == "application/problem+json"
    assert tour["stale"]["problem"]["status"] == 412
    assert tour["stale"]["problem"]["type"].startswith("https://")
    # The stale write changed nothing, as the server itself says.
    task = httpx.get(
        f"{server.base_url}/api/v1/me/tasks/{tour['created'][0]}",
        headers=identities.headers("user-11"),
    ).json()
    assert (task["title"], task["status"], task["version"]) == ("Tour task 1", "done", 2)
    # The server serves the committed document; only the deployment's issuer differs.
    served = httpx.get(f"{server.base_url}/openapi.json").json()
    scheme = served["components"]["securitySchemes"]["OpenIDConnect"]
    assert scheme.pop("openIdConnectUrl") == identity_provider.discovery_url
    committed = json.loads(DOCUMENT_PATH.read_text())
    placeholder = committed["components"]["securitySchemes"]["OpenIDConnect"]
    assert placeholder.pop("openIdConnectUrl").startswith(PLACEHOLDER_ISSUER)
    assert served == committed
    assert "Traceback" not in server.output()
