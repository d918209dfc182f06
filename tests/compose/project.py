"""compose.yaml run by podman-compose: the project, its containers' health, its leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.image.podman import Podman, run_tool
from tests.support import PROJECT_ROOT, require_tool

COMPOSE_FILE = PROJECT_ROOT / "compose.yaml"
TEST_OVERRIDE = Path(__file__).resolve().parent / "compose.test.yaml"
MAKE_SECRETS = PROJECT_ROOT / "compose" / "make-secrets.sh"
# Every container, volume and network of the test carries this project name (and label).
PROJECT_NAME = "groundwork-compose-test"
PROJECT_LABEL = f"io.podman.compose.project={PROJECT_NAME}"
HEALTH_TIMEOUT_SECONDS = 120
# compose.yaml's issuer unless OIDC_ISSUER is set: how containers reach the provider.
DEFAULT_ISSUER = "http://oidc:8900"
# Every layer of the test's builds carries the ID of the base it was built on: once the base
# is rebuilt, the layers on the old one can never be a cache hit again and are removed.
BASE_LABEL = "org.groundwork.compose-test.base"


@dataclass
class ComposeReport:
    """What the Compose test measured, printed at the end of the run."""

    started: float = 0.0
    lines: list[str] = field(default_factory=list)


REPORT = ComposeReport()


def remove_layers_of_old_bases(podman: Podman, base_id: str) -> None:
    """Remove the images and layers the test built on any other base than `base_id`."""
    listing = podman(
        "images", "--all", "--noheading", "--no-trunc", "--filter", f"label={BASE_LABEL}",
        "--format", f'{{{{.ID}}}} {{{{index .Labels "{BASE_LABEL}"}}}}',
    ).stdout.split("\n")  # fmt: skip
    stale = [line.split()[0] for line in listing if line.strip() and line.split()[1] != base_id]
    if stale:
        podman("rmi", "--force", "--ignore", *stale)
        REPORT.lines.append(f"removed {len(stale)} image layers built on an older base")


def make_secrets(folder: Path) -> None:
    """Write the password files into `folder` with the script `make compose-secrets` runs."""
    subprocess.run([MAKE_SECRETS, str(folder)], check=True, capture_output=True)


def compose_file() -> dict[str, Any]:
    """compose.yaml as YAML reads it (merge keys resolved, variables not interpolated)."""
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def podman_compose_executable() -> str:
    """The pinned podman-compose of the dev dependencies (in the same virtualenv as pytest)."""
    beside_python = Path(sys.executable).parent / "podman-compose"
    if beside_python.exists():
        return str(beside_python)
    return require_tool("podman-compose", "a dev dependency: make install")


@dataclass(frozen=True)
class ComposeProject:
    """compose.yaml plus the test override, as project PROJECT_NAME, with `variables` set.

    podman-compose sees only PATH, CONTAINERS_CONF and `variables`: nothing of the caller's
    shell (an OIDC_ISSUER, say) is interpolated into the file.
    """

    podman: Podman
    executable: str
    variables: dict[str, str]

    def __call__(self, *arguments: str, check: bool = True, timeout: float = 600) -> str:
        """Run `podman-compose ARGUMENTS`; on failure (with `check`), fail with its output."""
        command = [
            self.executable, "--podman-path", self.podman.executable,
            "--project-name", PROJECT_NAME, "--env-file", os.devnull,
            "--file", str(COMPOSE_FILE), "--file", str(TEST_OVERRIDE), *arguments,
        ]  # fmt: skip
        environment = {
            "PATH": os.environ["PATH"],
            "CONTAINERS_CONF": str(self.podman.containers_conf),
            **self.variables,
        }
        result = run_tool(command, environment, check=check, timeout=timeout, cwd=PROJECT_ROOT)
        return result.stdout

    def container(self, service: str) -> str:
        """The name podman-compose gives the one container of `service`."""
        return f"{PROJECT_NAME}_{service}_1"

    def state(self, service: str) -> dict[str, Any]:
        """The container's `State` as podman inspect reports it."""
        output = self.podman("inspect", "--format", "{{json .State}}", self.container(service))
        state: dict[str, Any] = json.loads(output.stdout)
        return state

    def logs(self, service: str) -> str:
        """The last lines a service's container printed, for failure messages."""
        return self.podman.logs(self.container(service))

    def wait_healthy(self, service: str) -> None:
        """Run the service's Compose healthcheck until it passes; fail if the container stops.

        podman 4.3 runs healthchecks on systemd timers, which a host without systemd lacks,
        so the test runs the same check itself (`podman healthcheck run`), as a timer would.
        """
        name = self.container(service)
        deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not self.state(service)["Running"]:
                pytest.fail(f"{service} stopped before it was healthy:\n{self.logs(service)}")
            if self.podman("healthcheck", "run", name, check=False).returncode == 0:
                return
            time.sleep(0.5)
        pytest.fail(f"{service} not healthy in {HEALTH_TIMEOUT_SECONDS} s:\n{self.logs(service)}")

    def remove_everything(self) -> None:
        """Remove every container, volume and network of the project, however it ended."""
        label = f"label={PROJECT_LABEL}"
        containers = self.podman("ps", "--all", "--quiet", "--filter", label).stdout.split()
        if containers:
            self.podman("rm", "--force", "--volumes", *containers)
        for kind in ("volume", "network"):
            names = self.podman(kind, "ls", "--quiet", "--filter", label).stdout.split()
            if names:
                self.podman(kind, "rm", "--force", *names)

    def leftovers(self) -> list[str]:
        """What of the project still exists: containers, volumes, networks."""
        label = f"label={PROJECT_LABEL}"
        found = []
        for kind in ("container", "volume", "network"):
            listing = ["ps", "--all"] if kind == "container" else [kind, "ls"]
            names = self.podman(*listing, "--quiet", "--filter", label).stdout.split()
            found += [f"{kind} {name}" for name in names]
        return found
