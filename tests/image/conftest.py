"""Fixtures of the image test: podman, a base image, the project's image built from its Dockerfile.

The official base (python:3.11-slim-bookworm) cannot be pulled on every machine, so by default
the image is built on a stand-in made with debootstrap (tests/image/build-stand-in-base.sh),
cached as a tarball in .tools/cache/image/. IMAGE_TEST_BASE=python:3.11-slim-bookworm builds on
the official image instead, pulling it if needed.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# The chart tests' fixtures: the real helm, and the chart rendered with some values.
from tests.chart.conftest import helm, render  # noqa: F401
from tests.image.podman import (
    CACHE_DIR,
    CONTAINERS_CONF,
    REPORT,
    BaseImage,
    NetworkState,
    Podman,
)
from tests.support import PROJECT_ROOT, require_tool, running_in_ci

IMAGE = "localhost/groundwork:image-test"
STAND_IN_BASE = "localhost/groundwork-stand-in-python:3.11-bookworm"
STAND_IN_TARBALL = CACHE_DIR / "stand-in-base-bookworm.tar"
STAND_IN_SCRIPT = PROJECT_ROOT / "tests" / "image" / "build-stand-in-base.sh"
# Which tarball an imported stand-in came from: a rebuilt tarball is imported again.
TARBALL_LABEL = "org.groundwork.stand-in-tarball"
HOW_TO_GET_PODMAN = "make system-packages installs podman, runc and debootstrap (Debian, as root)"
# Test runs from several checkouts share the machine's image store: one at a time builds.
STORE_LOCK = Path(tempfile.gettempdir()) / "groundwork-image-test.lock"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the image's size and build times: the numbers the README quotes."""
    if REPORT.lines:
        terminalreporter.section("container image")
        for line in REPORT.lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def podman() -> Podman:
    """The podman CLI with runc, as root; skip loudly (fail under CI) where it cannot run."""
    REPORT.started = time.monotonic()
    executable = require_tool("podman", HOW_TO_GET_PODMAN)
    require_tool("runc", HOW_TO_GET_PODMAN)
    if os.geteuid() != 0:
        message = "the image test runs podman as root (rootful storage and host networking)"
        if running_in_ci():
            pytest.fail(f"{message}; CI must run as root", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    containers_conf = CACHE_DIR / "containers.conf"
    containers_conf.write_text(CONTAINERS_CONF)
    return Podman(executable, containers_conf)


@pytest.fixture(scope="module")
def store_lock(podman: Podman) -> Iterator[None]:
    """Hold the image store alone: another run's cleanup would remove what this one built."""
    with STORE_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # A run that was killed may have left its containers behind.
        podman.remove_test_containers()
        yield


@pytest.fixture(scope="module")
def base_image(podman: Podman, store_lock: None) -> BaseImage:
    """IMAGE_TEST_BASE if set, else the debootstrap stand-in, built once and kept."""
    if official := os.environ.get("IMAGE_TEST_BASE"):
        if podman("image", "exists", official, check=False).returncode != 0:
            podman("pull", official)
        return BaseImage(official, {})
    if not STAND_IN_TARBALL.exists():
        require_tool("debootstrap", HOW_TO_GET_PODMAN)
        started = time.monotonic()
        subprocess.run([STAND_IN_SCRIPT, STAND_IN_TARBALL], check=True)
        REPORT.lines.append(f"stand-in base built by debootstrap in {_since(started)}")
    stat = STAND_IN_TARBALL.stat()
    stamp = f"{stat.st_size}-{stat.st_mtime_ns}"
    label = podman(
        "image", "inspect", "--format", f'{{{{index .Labels "{TARBALL_LABEL}"}}}}', STAND_IN_BASE,
        check=False,
    ).stdout.strip()  # fmt: skip
    if label != stamp:
        podman("rmi", "--force", "--ignore", STAND_IN_BASE)
        podman(
            "import",
            "--change", f"LABEL {TARBALL_LABEL}={stamp}",
            "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change", "ENV LANG=C.UTF-8",
            "--change", 'CMD ["python3"]',
            str(STAND_IN_TARBALL), STAND_IN_BASE,
        )  # fmt: skip
    # The stand-in trusts the host's extra CAs (an intercepting proxy's); uv needs to be told.
    return BaseImage(STAND_IN_BASE, {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"})


@pytest.fixture(scope="module")
def image(podman: Podman, base_image: BaseImage) -> Iterator[str]:
    """The project's Dockerfile, unchanged, built cold and then rebuilt warm; removed afterwards.

    Teardown removes the containers and images the test made (the base stays cached) and any
    firewall chains or bridges podman left behind.
    """
    images_before = podman.image_ids()
    network_before = NetworkState.now()
    try:
        started = time.monotonic()
        podman.build(IMAGE, PROJECT_ROOT, base_image, "--no-cache")
        cold = _since(started)
        started = time.monotonic()
        podman.build(IMAGE, PROJECT_ROOT, base_image)
        warm = _since(started)
        size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
        REPORT.lines.append(
            f"groundwork image on {base_image.name}: {size / 1e6:.0f} MB; "
            f"cold build {cold}, warm rebuild {warm}"
        )
        yield IMAGE
    finally:
        podman.remove_test_containers()
        if built := podman.image_ids() - images_before:
            podman("rmi", "--force", "--ignore", *built)
        if removed := network_before.restore_podman_leftovers():
            REPORT.lines.append(f"removed podman network leftovers: {', '.join(removed)}")
        REPORT.lines.append(f"image test: {_since(REPORT.started)} in all")


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"
