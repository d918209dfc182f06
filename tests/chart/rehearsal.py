"""Run rendered containers as local processes, the way the kubelet would run them.

What the chart renders (command, environment from its Secrets and ConfigMaps, mounts, ports,
probes) is used as is, with the few substitutions a machine without a cluster needs:
`python` is this interpreter, HOST is loopback, container ports get free local ports, mounted
paths become temporary folders (with a Secret volume's files in them), Service names resolve
to the test database (cluster DNS), and a container of another image than the app's finds
that image's tools on PATH (PostgreSQL's client tools for the postgres image). A Job's
initContainers run to completion first.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from app.dev.embedded_postgres import free_port
from tests.chart.kube import PROJECT_ROOT, Release

# What the image holds besides its virtualenv (the Dockerfile contract).
IMAGE_CONTENTS = ("app", "alembic", "alembic.ini")
POLL_SECONDS = 0.2


def database_roles(admin_url: str, database: str) -> tuple[set[str], set[str]]:
    """Who owns the tables of `database`, and who is connected to it (besides this query)."""
    url = make_url(admin_url).set(database=database).render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as connection:
        owners = connection.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        connected = connection.execute(
            "SELECT usename FROM pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return {row[0] for row in owners}, {row[0] for row in connected}


def stage_image(destination: Path) -> Path:
    """Copy what the image contains into `destination`, the container's working directory.

    Running from a copy keeps the repository clean (an upgrade adds a migration to the copy)
    and proves the image's files are enough; no `.env` is read.
    """
    destination.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in IMAGE_CONTENTS:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        else:
            shutil.copy2(source, destination / name)
    return destination


@dataclass
class LocalContainer:
    """A rendered container running as a local process."""

    name: str
    spec: dict[str, Any]
    process: subprocess.Popen[bytes]
    log: Path
    ports: dict[int, int] = field(default_factory=dict)

    def log_tail(self, characters: int = 3000) -> str:
        """The end of the process's output, for failure messages."""
        return self.log.read_text(errors="replace")[-characters:]

    def local_port(self, port: int | str) -> int:
        """The local port behind a container port, given by number or by name."""
        if isinstance(port, str):
            named = {p["name"]: p["containerPort"] for p in self.spec.get("ports", [])}
            port = named[port]
        return self.ports[port]

    def url(self, probe: Mapping[str, Any]) -> str:
        """The local URL of an httpGet probe."""
        return f"http://127.0.0.1:{self.local_port(probe['port'])}{probe['path']}"

    def wait_for_probe(self, kind: str, expected_status: int = 200) -> httpx.Response:
        """Poll a rendered probe until it answers `expected_status`, within its own budget.

        The budget is the probe's periodSeconds x failureThreshold, as the kubelet allows.
        """
        probe = self.spec[f"{kind}Probe"]
        budget = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
        deadline = time.monotonic() + budget
        last: str = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited {self.process.returncode} before its {kind} probe "
                    f"passed:\n{self.log_tail()}"
                )
            try:
                response = httpx.get(
                    self.url(probe["httpGet"]), timeout=probe.get("timeoutSeconds", 1)
                )
            except httpx.TransportError as error:
                last = repr(error)
            else:
                if response.status_code == expected_status:
                    return response
                last = f"{response.status_code} {response.text[:200]}"
            time.sleep(POLL_SECONDS)
        raise AssertionError(
            f"{self.name} {kind} probe not {expected_status} in {budget} s ({last}):\n"
            f"{self.log_tail()}"
        )

    def wait(self, timeout: float) -> int:
        """Wait for the process to end and return its exit status."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} still ran after {timeout} s:\n{self.log_tail()}"
            ) from None

    def terminate(self, grace_seconds: float) -> tuple[int, float]:
        """Send SIGTERM as the kubelet does; return the exit status and the seconds it took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        status = self.wait(grace_seconds)
        return status, time.monotonic() - started

    def kill(self) -> None:
        """Kill the process group (a last resort in test teardown)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass
class LocalNode:
    """Runs containers of rendered releases on this machine.

    `services` maps a Service's "name:port" to a local "host:port" (the cluster's DNS), in
    URLs and in libpq's PGHOST and PGPORT; `image_tools` maps an image repository (such as
    "postgres") to a folder of its programs.
    """

    root: Path
    services: dict[str, str] = field(default_factory=dict)
    image_tools: dict[str, Path] = field(default_factory=dict)
    running: list[LocalContainer] = field(default_factory=list)

    def start(
        self,
        release: Release,
        owner: dict[str, Any],
        workdir: Path,
        container: dict[str, Any] | None = None,
    ) -> LocalContainer:
        """Start a container of `owner`'s pod template (its first by default) in `workdir`."""
        pod = owner["spec"]["template"]["spec"]
        container = container or pod["containers"][0]
        name = f"{owner['kind'].lower()}-{container['name']}-{len(self.running)}"
        sandbox = self.root / name
        environment = self.mounted_environment(release, owner, container, sandbox)
        ports = {p["containerPort"]: free_port() for p in container.get("ports", [])}
        if ports:
            assert int(environment["PORT"]) in ports, "PORT is not a container port"
            environment["PORT"] = str(ports[int(environment["PORT"])])
        if "HOST" in environment:
            environment["HOST"] = "127.0.0.1"  # loopback only on this machine
        environment = self._resolve_services(environment)
        command = [*container["command"], *container.get("args", [])]
        if command[0] == "python":
            command[0] = sys.executable
        log = sandbox / "output.log"
        path = os.environ["PATH"]
        if tools := self.image_tools.get(container["image"].split(":")[0]):
            path = f"{tools}{os.pathsep}{path}"
        base = {"PATH": path, "HOME": str(sandbox / "home"), "LANG": "C.UTF-8"}
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env={**base, **environment},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = LocalContainer(name, container, process, log, ports)
        self.running.append(started)
        return started

    def run_job(self, release: Release, job: dict[str, Any], workdir: Path) -> None:
        """Run a Job's pod to completion within its activeDeadlineSeconds; it must exit 0.

        Its initContainers run first, one after the other, each to exit 0, as in a pod.
        """
        deadline = time.monotonic() + job["spec"]["activeDeadlineSeconds"]
        pod = job["spec"]["template"]["spec"]
        for spec in [*pod.get("initContainers", []), pod["containers"][0]]:
            container = self.start(release, job, workdir, spec)
            status = container.wait(max(deadline - time.monotonic(), 0))
            assert status == 0, f"{container.name} exited {status}:\n{container.log_tail()}"

    def _resolve_services(self, environment: dict[str, str]) -> dict[str, str]:
        """Point Service addresses at their local stand-ins, as the cluster's DNS would."""
        resolved = dict(environment)
        for service, local in self.services.items():
            resolved = {k: v.replace(service, local) for k, v in resolved.items()}
            if f"{resolved.get('PGHOST')}:{resolved.get('PGPORT')}" == service:
                resolved["PGHOST"], resolved["PGPORT"] = local.rsplit(":", 1)
        return resolved

    def mounted_environment(
        self, release: Release, owner: dict[str, Any], container: dict[str, Any], sandbox: Path
    ) -> dict[str, str]:
        """`container`'s environment, its volume mounts made local folders under `sandbox`.

        Every mount gets a folder, a Secret volume's files are written in it (read-only, as
        the kubelet mounts them), and variables naming a path under a mount point there.
        """
        (sandbox / "home").mkdir(parents=True)
        mounts = sorted(
            (m["mountPath"] for m in container.get("volumeMounts", [])), key=len, reverse=True
        )
        for mount in mounts:
            (sandbox / mount.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for path, content in release.mounted_files(
            owner["spec"]["template"]["spec"], container
        ).items():
            file = sandbox / path.lstrip("/")
            file.write_text(content)
            file.chmod(0o440)
        environment = release.resolve_env(container)
        rewritten = {}
        for name, value in environment.items():
            for mount in mounts:
                if value == mount or value.startswith(mount.rstrip("/") + "/"):
                    value = str(sandbox / value.lstrip("/"))
                    break
            rewritten[name] = value
        return rewritten

    def stop_all(self) -> None:
        """Kill whatever is still running."""
        for container in self.running:
            container.kill()


class Service:
    """A Service's endpoints: round-robin over the pods that passed their readiness probe.

    Pods join only after their rendered readiness probe answers 200 (readiness gating) and
    leave when their termination begins, as the endpoints controller would drive them.
    """

    def __init__(self) -> None:
        self._ready: list[LocalContainer] = []
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def add_when_ready(self, pod: LocalContainer) -> None:
        """Wait for `pod`'s startup and readiness probes, then route traffic to it."""
        pod.wait_for_probe("startup")
        pod.wait_for_probe("readiness")
        with self._lock:
            self._ready.append(pod)

    def remove(self, pod: LocalContainer) -> None:
        """Stop routing new requests to `pod`."""
        with self._lock:
            self._ready.remove(pod)

    def pick(self) -> LocalContainer:
        """The next ready pod, in turn."""
        with self._lock:
            assert self._ready, "no ready endpoint"
            return self._ready[next(self._turn) % len(self._ready)]


@dataclass
class LoadGenerator:
    """Steady authenticated traffic at a Service, in a thread, bounded in count and time.

    Requests alternate between a GET and a POST of `path`; each outcome is recorded with
    the pod that served it, a transport error as status 0.
    """

    service: Service
    path: str
    headers: dict[str, str]
    max_requests: int = 2000
    max_seconds: float = 60.0
    interval: float = 0.01
    outcomes: list[tuple[str, str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> LoadGenerator:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(headers=self.headers, timeout=5) as client:
            for number in range(self.max_requests):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                pod = self.service.pick()
                url = f"http://127.0.0.1:{pod.local_port('http')}{self.path}"
                method = "POST" if number % 2 else "GET"
                try:
                    body = {"title": f"load {number}"} if method == "POST" else None
                    status = client.request(method, url, json=body).status_code
                except httpx.TransportError:
                    status = 0
                self.outcomes.append((pod.name, method, status))
                self._stop.wait(self.interval)

    def failures(self) -> list[tuple[str, str, int]]:
        """Every request that did not end in a 2xx response."""
        return [outcome for outcome in self.outcomes if not 200 <= outcome[2] < 300]

    def served_by(self) -> set[str]:
        """The names of the pods that answered at least one request."""
        return {name for name, _, status in self.outcomes if status}


def surge_and_unavailable(deployment: dict[str, Any]) -> tuple[int, int]:
    """A Deployment's rolling update as pod counts (surge rounds up, unavailable down)."""
    replicas = deployment["spec"]["replicas"]
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]

    def count(value: int | str, rounding: Any) -> int:
        if isinstance(value, str) and value.endswith("%"):
            return int(rounding(replicas * int(value[:-1]) / 100))
        return int(value)

    return count(rolling["maxSurge"], math.ceil), count(rolling["maxUnavailable"], math.floor)


def terminate_pod(release: Release, service: Service, pod: LocalContainer) -> None:
    """Take a pod out of the Service, run its preStop sleep, then SIGTERM within the grace."""
    spec = release.server["spec"]["template"]["spec"]
    grace = spec["terminationGracePeriodSeconds"]
    pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    service.remove(pod)
    time.sleep(pre_stop)  # in-flight requests and lagging load balancers finish here
    status, seconds = pod.terminate(grace - pre_stop)
    assert status == 0, f"{pod.name} exited {status} on SIGTERM:\n{pod.log_tail()}"
    assert seconds < grace - pre_stop


def rolling_update(
    node: LocalNode,
    old: tuple[Release, list[LocalContainer]],
    new: tuple[Release, Path],
    service: Service,
) -> list[LocalContainer]:
    """Replace the old pods with the new release's, as the Deployment controller would.

    With maxUnavailable 0: start `maxSurge` new pods, wait until they are ready (in the
    Service), only then terminate as many old ones; repeat. Returns the new pods.
    """
    (old_release, old_pods), (release, workdir) = old, new
    surge, unavailable = surge_and_unavailable(release.server)
    assert unavailable == 0, "the rehearsal expects surge, never unavailability"
    assert surge >= 1, "a rolling update with neither surge nor unavailability"
    remaining, started = list(old_pods), []
    while len(started) < release.server["spec"]["replicas"]:
        batch = [node.start(release, release.server, workdir) for _ in range(surge)]
        for pod in batch:
            service.add_when_ready(pod)
        started += batch
        for pod in remaining[: len(batch)]:
            terminate_pod(old_release, service, pod)
        remaining = remaining[len(batch) :]
    return started
