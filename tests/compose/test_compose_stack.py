"""compose.yaml, run: up, an authenticated round trip, a restart, down and up on the same volume.

podman-compose runs the real compose.yaml (merged with tests/compose/compose.test.yaml, which
only swaps in a local postgres:18 stand-in and the test's password files): `db` initialises
its volume and creates the two roles, `migrate` runs once as the owner, `api` serves as the
runtime role, read-only and non-root, and `oidc` is the development OpenID Provider. The test
gets its token from the provider's published port, as a developer's host would.

The tests run in order and share the stack: each step starts from what the previous left.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.compose.conftest import ENV_FILE_APP_NAME, Published
from tests.compose.project import DEFAULT_ISSUER, PROJECT_NAME, REPORT, ComposeProject

pytestmark = pytest.mark.slow

TASKS = "/api/v1/me/tasks"
SCOPES = "tasks:read tasks:write"
# The services that run until stopped, each with a Compose healthcheck.
LONG_RUNNING = ("db", "oidc", "api")


@dataclass
class Scenario:
    """What the steps hand on: the stack's addresses, a token and the task made with it."""

    api: str
    oidc: str
    client_secret: str
    token: str = ""
    task: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """The bearer token of the round trip's caller."""
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def scenario(project: ComposeProject, published: Published, secrets_dir: Path) -> Scenario:
    """The addresses on the host, and the CLI client's secret as `make compose-secrets` wrote it."""
    return Scenario(
        api=f"http://127.0.0.1:{published.api}",
        oidc=f"http://127.0.0.1:{published.oidc}",
        client_secret=(secrets_dir / "oidc_client_secret").read_text().strip(),
    )


def bring_up(project: ComposeProject) -> None:
    """Start the services in compose.yaml's order, each once its dependencies are met.

    `up` alone does this with Docker Compose or podman >= 4.6. Debian 12's podman 4.3 cannot:
    podman-compose skips `service_healthy` there, and podman's own dependency (`--requires`)
    would start `migrate` again with every `api` start. So each step is an `up --no-deps`
    of the services whose `depends_on` conditions the previous steps met.
    """
    project("up", "--detach", "--no-deps", "db", "oidc")
    project.wait_healthy("db")
    project("up", "--detach", "--no-deps", "migrate")
    exit_code = project.podman("wait", project.container("migrate")).stdout.strip()
    assert exit_code == "0", project.logs("migrate")
    project("up", "--detach", "--no-deps", "api")
    for service in LONG_RUNNING:
        project.wait_healthy(service)


def payload(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (the API verifies; the test only reads `iss`)."""
    encoded = token.split(".")[1]
    padded = encoded + "=" * (-len(encoded) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return claims


def test_up_runs_migrations_once_then_every_service_is_healthy(project: ComposeProject) -> None:
    bring_up(project)


def test_an_authenticated_round_trip_through_the_published_ports(scenario: Scenario) -> None:
    response = httpx.post(
        f"{scenario.oidc}/token",
        data={"grant_type": "client_credentials", "scope": SCOPES},
        auth=("groundwork-cli", scenario.client_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    scenario.token = response.json()["access_token"]
    # Asked for on the host's port, signed with the issuer the API trusts inside the network.
    assert payload(scenario.token)["iss"] == DEFAULT_ISSUER

    assert httpx.get(f"{scenario.api}{TASKS}", timeout=10).status_code == 401
    created = httpx.post(
        f"{scenario.api}{TASKS}", json={"title": "Compose"}, headers=scenario.headers, timeout=10
    )
    assert created.status_code == 201, created.text
    scenario.task = created.json()
    listed = httpx.get(f"{scenario.api}{TASKS}", headers=scenario.headers, timeout=10)
    assert listed.status_code == 200, listed.text
    assert [task["id"] for task in listed.json()["items"]] == [scenario.task["id"]]


def psql(project: ComposeProject, query: str) -> list[str]:
    """Rows of `query` in the app database, as the superuser over the db container's socket."""
    return project.podman(
        "exec", "--user", "postgres", project.container("db"),
        "psql", "--no-psqlrc", "--tuples-only", "--no-align", "--field-separator=,",
        "--username=postgres", "--dbname=groundwork", "--command", query,
    ).stdout.split()  # fmt: skip


def test_the_runtime_role_owns_nothing_and_bypasses_nothing(project: ComposeProject) -> None:
    query = (
        "SELECT r.rolname, r.rolsuper, r.rolbypassrls, count(c.oid) FROM pg_roles r"
        " LEFT JOIN pg_class c ON c.relowner = r.oid AND c.relkind = 'r'"
        " AND c.relnamespace = 'public'::regnamespace"
        " WHERE r.rolname IN ('groundwork', 'groundwork_app') GROUP BY 1, 2, 3 ORDER BY 1"
    )
    rows = psql(project, query)

    owner, runtime = (row.split(",") for row in rows)
    assert owner[:3] == ["groundwork", "f", "f"]
    assert int(owner[3]) > 0
    assert runtime == ["groundwork_app", "f", "f", "0"]


def test_settings_from_the_env_file_reach_the_api(project: ComposeProject) -> None:
    names = psql(
        project,
        "SELECT DISTINCT application_name FROM pg_stat_activity WHERE usename = 'groundwork_app'",
    )

    assert names == [ENV_FILE_APP_NAME]


def test_a_restarted_api_finds_the_data(project: ComposeProject, scenario: Scenario) -> None:
    before = project.state("api")["StartedAt"]

    project("restart", "api")

    assert project.state("api")["StartedAt"] != before
    project.wait_healthy("api")
    task = httpx.get(f"{scenario.api}{TASKS}/{scenario.task['id']}", headers=scenario.headers)
    assert task.status_code == 200, task.text
    assert task.json() == scenario.task


def test_down_then_up_finds_the_data_in_the_volume(
    project: ComposeProject, scenario: Scenario
) -> None:
    project("down")
    assert not [line for line in project.leftovers() if line.startswith("container ")]
    volumes = project.podman("volume", "ls", "--quiet").stdout.split()
    assert f"{PROJECT_NAME}_pgdata" in volumes

    bring_up(project)

    # The provider's keys live in a volume too: the token from before the down still verifies.
    task = httpx.get(f"{scenario.api}{TASKS}/{scenario.task['id']}", headers=scenario.headers)
    assert task.status_code == 200, task.text
    assert task.json() == scenario.task
    REPORT.lines.append("round trip, restart, down and up: the data stayed")
