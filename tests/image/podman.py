"""podman as the image test drives it: builds, chart-like runs, and leaving the host as found."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.chart.kube import Manifest, Release
from tests.support import PROJECT_ROOT

CACHE_DIR = PROJECT_ROOT / ".tools" / "cache" / "image"
# crun fails on cgroup v1 hosts; runc refuses podman's default open-files limit (1048576) where
# the host's hard limit is lower, so the limits are set to ones such hosts allow.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
"""
# Every container the test starts carries this prefix, so teardown finds them however it failed.
CONTAINER_PREFIX = "groundwork-image-test-"
# Network state podman may create (CNI/netavark firewall chains, bridges); removed afterwards.
PODMAN_NETWORK_NAMES = re.compile(r"^(CNI-|NETAVARK|cni-podman|podman)")


@dataclass
class ImageReport:
    """What the image test measured, printed at the end of the run."""

    started: float = 0.0
    lines: list[str] = field(default_factory=list)


REPORT = ImageReport()


def run_tool(
    command: list[str],
    environment: Mapping[str, str],
    *,
    check: bool = True,
    timeout: float = 600,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a container tool; on failure (with `check`), fail the test with its output's tail."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{Path(command[0]).name} {' '.join(command[1:])} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}",
            pytrace=False,
        )
    return result


@dataclass(frozen=True)
class BaseImage:
    """The image both Dockerfile stages start from, and the build arguments it needs."""

    name: str
    build_arguments: dict[str, str]


@dataclass(frozen=True)
class Podman:
    """The podman executable with the test's containers.conf."""

    executable: str
    containers_conf: Path

    def __call__(
        self, *arguments: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run `podman ARGUMENTS`; on failure (with `check`), fail with its output."""
        environment = {**os.environ, "CONTAINERS_CONF": str(self.containers_conf)}
        return run_tool([self.executable, *arguments], environment, check=check, timeout=timeout)

    def build(
        self,
        tag: str,
        context: Path,
        base: BaseImage,
        *options: str,
        dockerfile: Path | None = None,
    ) -> None:
        """Build `context` on `base`, never pulling: the base exists only in the local store.

        Args:
            tag: The image name to give the result.
            context: The build context (its .dockerignore, or the Dockerfile's own, applies).
            base: The `BASE_IMAGE` build argument and what building on it needs.
            options: More `podman build` options, such as `--no-cache`.
            dockerfile: The Dockerfile if not `context`/Dockerfile.
        """
        self(
            "build", "--pull=never", "--network=host", "--tag", tag, *options,
            *(["--file", str(dockerfile)] if dockerfile else []),
            "--build-arg", f"BASE_IMAGE={base.name}",
            *(f"--build-arg={name}={value}" for name, value in base.build_arguments.items()),
            str(context),
        )  # fmt: skip

    def image_ids(self) -> set[str]:
        """The IDs of every image in the store, intermediate layers included."""
        return set(self("images", "--all", "--quiet", "--no-trunc").stdout.split())

    def remove_test_containers(self) -> None:
        """Remove every container this test started, running or not."""
        names = self("ps", "--all", "--quiet", "--filter", f"name=^{CONTAINER_PREFIX}").stdout
        if names.split():
            self("rm", "--force", *names.split())

    def logs(self, name: str) -> str:
        """A container's output, for failure messages."""
        result = self("logs", name, check=False)
        return (result.stdout + result.stderr)[-5000:]


@dataclass(frozen=True)
class PodContainer:
    """A rendered workload's first container, as podman can run it like the kubelet would."""

    command: list[str]
    env: dict[str, str]
    options: list[str]
    grace_period_seconds: int
    pre_stop_sleep_seconds: int
    readiness_path: str | None

    @classmethod
    def from_workload(
        cls,
        release: Release,
        workload: Manifest,
        env_overrides: Mapping[str, str],
        files: Path,
    ) -> PodContainer:
        """Translate the pod spec: user, group, read-only root, capabilities and volumes.

        The container joins the host's network, so that it reaches the test PostgreSQL on
        127.0.0.1; `env_overrides` (a free PORT) keep it from clashing with the host. A Secret
        volume's files are written under `files` and bind-mounted read-only, owned by the pod's
        fsGroup with the volume's mode, as the kubelet mounts them.
        """
        pod = workload["spec"]["template"]["spec"]
        container = pod["containers"][0]
        security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        options = ["--network=host", f"--user={security['runAsUser']}:{security['runAsGroup']}"]
        if security.get("readOnlyRootFilesystem"):
            options += ["--read-only", "--read-only-tmpfs=false"]
        options += [f"--cap-drop={cap.lower()}" for cap in security["capabilities"]["drop"]]
        if security.get("allowPrivilegeEscalation") is False:
            options.append("--security-opt=no-new-privileges")
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        secret_files = release.mounted_files(pod, container)
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if "secret" in volume:
                folder = files / mount["name"]
                folder.mkdir(parents=True)
                for path, content in secret_files.items():
                    if path.startswith(mount["mountPath"].rstrip("/") + "/"):
                        file = folder / path.rsplit("/", 1)[1]
                        file.write_text(content)
                        os.chown(file, 0, security["fsGroup"])
                        file.chmod(volume["secret"]["defaultMode"])
                options.append(f"--volume={folder}:{mount['mountPath']}:ro")
                continue
            options.append(f"--tmpfs={mount['mountPath']}:{_empty_dir(volume)}")
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {})
        readiness = container.get("readinessProbe", {}).get("httpGet", {})
        return cls(
            command=[*container.get("command", []), *container.get("args", [])],
            env={**release.resolve_env(container), **env_overrides},
            options=options,
            grace_period_seconds=pod.get("terminationGracePeriodSeconds", 30),
            pre_stop_sleep_seconds=pre_stop.get("seconds", 0),
            readiness_path=readiness.get("path"),
        )

    def run_arguments(self, name: str, image: str) -> list[str]:
        """`podman run` arguments after `run` (add `--rm` or `--detach` before them)."""
        env = [f"--env={variable}={value}" for variable, value in self.env.items()]
        return [f"--name={name}", *self.options, *env, image, *self.command]


# Kubernetes quantity suffixes as tmpfs understands them.
_TMPFS_UNITS = {"Ki": "k", "Mi": "m", "Gi": "g"}


def _empty_dir(volume: Manifest) -> str:
    """The tmpfs options for an emptyDir: world-writable like the kubelet makes it, same size."""
    assert "emptyDir" in volume, f"the image test only emulates emptyDir volumes: {volume}"
    options = "rw,nosuid,nodev,mode=0777"
    if size := volume["emptyDir"].get("sizeLimit"):
        quantity = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", size)
        assert quantity, f"unexpected emptyDir sizeLimit {size}"
        options += f",size={quantity[1]}{_TMPFS_UNITS[quantity[2]]}"
    return options


def wait_until_ready(podman: Podman, name: str, probe_url: str, timeout: float = 60) -> None:
    """Poll the readiness probe until it answers 200; fail early if the container exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(probe_url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        running = podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        if running != "true":
            pytest.fail(f"container {name} exited before it was ready:\n{podman.logs(name)}")
        time.sleep(0.2)
    pytest.fail(f"container {name} not ready within {timeout} s:\n{podman.logs(name)}")


@dataclass(frozen=True)
class NetworkState:
    """The host's iptables chains per table and its network links."""

    chains: dict[str, set[str]]
    links: set[str]

    @classmethod
    def now(cls) -> NetworkState:
        """Read the current state (empty where the tools are missing)."""
        chains: dict[str, set[str]] = {}
        if shutil.which("iptables-save"):
            table = ""
            for line in _output("iptables-save").splitlines():
                if line.startswith("*"):
                    table = line[1:]
                    chains[table] = set()
                elif line.startswith(":"):
                    chains[table].add(line[1:].split()[0])
        links = set()
        if shutil.which("ip"):
            for line in _output("ip", "-brief", "link").splitlines():
                links.add(line.split()[0].split("@")[0])
        return cls(chains, links)

    def restore_podman_leftovers(self) -> list[str]:
        """Delete the podman chains and links that appeared since this state; say which."""
        now = NetworkState.now()
        removed = []
        for table, chains in now.chains.items():
            new = {
                chain
                for chain in chains - self.chains.get(table, set())
                if PODMAN_NETWORK_NAMES.match(chain)
            }
            if not new:
                continue
            for rule in _output("iptables-save", "-t", table).splitlines():
                fields = shlex.split(rule)
                jumps_to_new = "-j" in fields and fields[fields.index("-j") + 1] in new
                if rule.startswith("-A ") and fields[1] not in new and jumps_to_new:
                    _output("iptables", "-t", table, "-D", *fields[1:])
            for flag in ("--flush", "--delete-chain"):
                for chain in sorted(new):
                    _output("iptables", "-t", table, flag, chain)
            removed += [f"{table}/{chain}" for chain in sorted(new)]
        for link in sorted(now.links - self.links):
            if PODMAN_NETWORK_NAMES.match(link):
                _output("ip", "link", "delete", link)
                removed.append(f"link {link}")
        return removed


def _output(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout
