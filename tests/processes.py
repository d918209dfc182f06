"""Real server processes for the tests: the production gunicorn command, started and stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from app.dev.embedded_postgres import free_port
from tests.support import PROJECT_ROOT, child_environment, wait_until_ok

READY_TIMEOUT_SECONDS = 30
# What uvicorn logs (at info) once a worker's lifespan, and so its pool, is up.
WORKER_STARTED = "Application startup complete."


class ServerProcess:
    """`python -m app <command>` with its output in a file, reachable on a free port."""

    def __init__(self, workdir: Path, env: dict[str, str], command: str = "serve") -> None:
        self.port = free_port()
        self.log_path = workdir / f"server-{self.port}.log"
        metrics_dir = workdir / f"metrics-{self.port}"
        defaults = {
            "ENV": "prod",
            "LOG_LEVEL": "INFO",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        self.env = child_environment(**(defaults | env))
        self.command = command
        self.cwd = PROJECT_ROOT
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        """Start the process in its own session, so signals reach only it."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", self.command],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        """The master's process id."""
        assert self.process is not None
        return self.process.pid

    def wait_ready(self, path: str = "/health/db", timeout: float = READY_TIMEOUT_SECONDS) -> float:
        """Poll `path` until it answers 200; return the seconds it took."""
        assert self.process is not None
        return wait_until_ok(self.base_url + path, self.process, timeout, self.output)

    def wait_workers_started(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait until every worker has run its startup; readiness needs only the first one."""
        workers = int(self.env["WEB_CONCURRENCY"])
        deadline = time.monotonic() + timeout
        while self.output().count(WORKER_STARTED) < workers:
            assert time.monotonic() < deadline, (
                f"not all {workers} workers started:\n{self.output()}"
            )
            time.sleep(0.1)

    def worker_pids(self) -> set[int]:
        """The gunicorn workers now alive."""
        return {child.pid for child in psutil.Process(self.pid).children() if child.is_running()}

    def descendants(self) -> list[psutil.Process]:
        """Every process the command started (recursively) that is alive now."""
        return psutil.Process(self.pid).children(recursive=True)

    def send_signal(self, signum: signal.Signals) -> None:
        """Send `signum` to the master."""
        os.kill(self.pid, signum)

    def stop(self, signum: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        """Stop the process (killing it if it does not stop in time); return its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def output(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def is_listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
