"""Worker recycling that never leaves the server without its ready workers.

gunicorn recycles a worker after `MAX_REQUESTS` (plus jitter) by letting it exit and then
starting a replacement, which needs seconds to import the app and run its startup. Under even
load every worker reaches its limit at about the same time, so all of them left together and
for over a second no worker accepted. Jitter that scales with the limit only makes that less
likely, and a replacement started before the old one leaves would hold one worker more of
memory and database connections than the chart budgets for.

Here a worker at its limit keeps serving until it holds the one recycling lock of the server
and every other worker is ready (its listening socket accepting): only then does it leave.
Recycling is therefore one worker at a time, and with `WEB_CONCURRENCY` workers at least
`WEB_CONCURRENCY - 1` accept throughout (with a single worker there is nobody to cover it).

Readiness is a file per worker in a folder of the master's: the worker writes it once it
accepts and removes it before it leaves; the master removes it when a worker dies however it
died (`child_exit`), so a killed worker never counts as ready.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from uvicorn.config import Config
from uvicorn.server import Server

STATE_DIR_VARIABLE = "GROUNDWORK_WORKER_STATE_DIR"
_LOCK_NAME = "recycling.lock"
logger = logging.getLogger("uvicorn.error")


def registry_directory(worker_tmp_dir: Path | None, master_pid: int) -> Path:
    """The folder of a master's worker registry: next to the workers' heartbeat files."""
    return Path(worker_tmp_dir or tempfile.gettempdir(), f"groundwork-workers-{master_pid}")


class WorkerRegistry:
    """The ready workers of one gunicorn master, and the lock that lets one of them leave."""

    def __init__(self, directory: Path, workers: int) -> None:
        self.directory = directory
        self.workers = workers
        self._lock: int | None = None

    @classmethod
    def from_environment(cls, workers: int) -> WorkerRegistry:
        """The registry the master prepared (gunicorn_conf sets its folder before forking)."""
        return cls(Path(os.environ[STATE_DIR_VARIABLE]), workers)

    @staticmethod
    def reset(directory: Path) -> None:
        """Start from an empty folder (the master, before any worker forks)."""
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)

    def _ready_file(self, pid: int) -> Path:
        return self.directory / f"{pid}.ready"

    def mark_ready(self) -> None:
        """This worker accepts connections."""
        self._ready_file(os.getpid()).touch()
        logger.info("worker %d ready", os.getpid())

    def forget(self, pid: int) -> None:
        """Worker `pid` no longer accepts (it left or died)."""
        self._ready_file(pid).unlink(missing_ok=True)

    def ready_siblings(self) -> int:
        """How many other workers are ready now."""
        own = self._ready_file(os.getpid()).name
        return sum(1 for path in self.directory.glob("*.ready") if path.name != own)

    def may_leave(self) -> bool:
        """Take the recycling lock and, once every other worker is ready, leave the registry.

        The lock stays held until this process exits, so the next worker at its limit waits
        for this one to be gone and for its replacement to be ready.
        """
        if self._lock is None:
            descriptor = os.open(self.directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                return False
            self._lock = descriptor
        siblings = self.ready_siblings()
        if siblings < self.workers - 1:
            return False
        self.forget(os.getpid())
        logger.info("worker %d recycling: leaves with %d others ready", os.getpid(), siblings)
        return True


class RecyclingServer(Server):
    """uvicorn's server, which reports readiness and leaves at its limit only when covered."""

    def __init__(self, config: Config, registry: WorkerRegistry) -> None:
        """Take over uvicorn's request limit: uvicorn would exit the moment it is reached."""
        super().__init__(config)
        self.registry = registry
        self.recycle_after = config.limit_max_requests
        self._limit_reached = False

    @functools.cached_property
    def limit_max_requests(self) -> int | None:
        """None: uvicorn's own check never fires; `on_tick` applies the limit."""
        return None

    async def startup(self, sockets: Any = None) -> None:
        """Mark the worker ready once its listening socket accepts."""
        await super().startup(sockets)
        if self.started:
            self.registry.mark_ready()

    async def on_tick(self, counter: int) -> bool:
        """Past the request limit, leave as soon as the other workers cover for this one."""
        if await super().on_tick(counter):
            return True
        served = self.server_state.total_requests
        if self.recycle_after is None or served < self.recycle_after:
            return False
        if not self._limit_reached:
            self._limit_reached = True
            logger.info(
                "worker %d reached %d requests: recycles once others are ready", os.getpid(), served
            )
        return self.registry.may_leave()
