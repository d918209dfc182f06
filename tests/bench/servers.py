"""Servers under load: the application and the baselines, all under the production gunicorn config.

The baselines are started with the application's own gunicorn configuration file and only
the app module swapped, so workers, worker class, keep-alive, recycling and timeouts are the
same for every server in the comparison.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.__main__ import GUNICORN
from app.core.config import get_server_settings
from app.dev.embedded_postgres import free_port
from app.server.recycling import registry_directory

READY_POLL_SECONDS = 0.01
PAGE_SIZE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """One gunicorn master with its workers, logging to `log_path`."""

    name: str
    port: int
    ready_path: str
    process: subprocess.Popen[bytes]
    started_at: float
    log_path: Path
    ready_after: float | None = field(default=None)

    @property
    def base_url(self) -> str:
        """The server's address on loopback."""
        return f"http://127.0.0.1:{self.port}"

    def wait_until_ready(self, timeout: float) -> float:
        """Poll the readiness path; return the seconds from process start to the first 200."""
        deadline = self.started_at + timeout
        with httpx.Client(base_url=self.base_url, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    if client.get(self.ready_path).status_code == httpx.codes.OK:
                        self.ready_after = time.monotonic() - self.started_at
                        return self.ready_after
                except httpx.TransportError:
                    pass
                time.sleep(READY_POLL_SECONDS)
        raise RuntimeError(
            f"{self.name} was not ready within {timeout} s; its log:\n{self.log_tail()}"
        )

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's worker processes."""
        return sorted(pid for pid, parent in _parent_pids().items() if parent == self.process.pid)

    def time_worker_replacement(self, timeout: float) -> float:
        """Kill one worker; return the seconds until the master's new worker is ready.

        Ready is what the recycling registry records (app.server.recycling): the worker's
        listening socket accepts.
        """
        registry = registry_directory(get_server_settings().worker_tmp_dir, self.process.pid)
        victim = self.worker_pids()[0]
        before = {path.name for path in registry.glob("*.ready")}
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        while time.monotonic() - killed_at < timeout:
            ready = {path.name for path in registry.glob("*.ready")} - before
            if ready:
                return time.monotonic() - killed_at
            time.sleep(READY_POLL_SECONDS / 10)
        raise RuntimeError(f"{self.name}: no replacement worker was ready within {timeout} s")

    def cpu_seconds(self) -> float:
        """CPU time of the master and its workers, including workers that already exited."""
        return process_tree_cpu_seconds(self.process.pid)

    def worker_rss_bytes(self) -> dict[int, int]:
        """Return the resident memory of each worker, by pid."""
        return {pid: _rss_bytes(pid) for pid in self.worker_pids()}

    def log_tail(self, characters: int = 3000) -> str:
        """Return the end of the server's output."""
        return self.log_path.read_text(errors="replace")[-characters:]

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully (SIGTERM to the master), then kill if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    name: str, command: list[str], environment: dict[str, str], ready_path: str, log_dir: Path
) -> Server:
    """Start one server on a free loopback port; it is not ready yet when this returns."""
    port = free_port()
    metrics_dir = log_dir / f"{name}-metrics"
    log_path = log_dir / f"{name}.log"
    env = {
        **os.environ,
        **environment,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    started_at = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    return Server(name, port, ready_path, process, started_at, log_path)


def compile_bytecode(project_root: Path) -> None:
    """Byte-compile the virtualenv and the project, as the image does (UV_COMPILE_BYTECODE).

    Without it, under PYTHONDONTWRITEBYTECODE every server start compiles each module it
    imports again, and readiness would measure the compiler rather than the application.
    """
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j0",
            sysconfig.get_paths()["purelib"],
            *(str(project_root / folder) for folder in ("app", "alembic", "tests")),
        ],
        stdout=subprocess.DEVNULL,
        check=False,  # a file that does not compile fails at import, with a better message
    )


def application_command() -> list[str]:
    """The production entry point: `python -m app serve` (it execs the gunicorn master)."""
    return [sys.executable, "-m", "app", "serve"]


def baseline_command(app_module: str) -> list[str]:
    """Gunicorn with the application's configuration file, serving `app_module` instead."""
    return [*GUNICORN, app_module]


def process_tree_cpu_seconds(root: int) -> float:
    """User and system CPU seconds of `root` and its descendants, living or reaped."""
    parents = _parent_pids()
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    ticks = 0
    for pid in tree:
        try:
            fields = _stat_fields(pid)
        except OSError:  # exited meanwhile; its time moved to its parent's reaped-children time
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


def machine_busy_cpu_seconds() -> float:
    """CPU seconds all processors spent busy since boot (not idle, not waiting for I/O)."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks) - idle - iowait) / CLOCK_TICKS


def _stat_fields(pid: int) -> list[str]:
    # The command name is in parentheses and may hold spaces; the fields after it are fixed.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _parent_pids() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
        except OSError:
            continue
    return parents


def _rss_bytes(pid: int) -> int:
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident_pages * PAGE_SIZE_BYTES
