"""gunicorn's own log lines, sent through structlog like everything else."""

from __future__ import annotations

import errno
import logging
import signal
from typing import Any

from gunicorn.glogging import Logger

from app.core.config import get_settings
from app.core.logging import configure_logging


class RoutineShutdownFilter(logging.Filter):
    """Log at DEBUG the two lines every clean stop prints, which otherwise read like failures.

    - `Error while closing socket [Errno 9] Bad file descriptor`, once per worker: uvloop
      (uvicorn's event loop) closes the listening socket's descriptor itself when its server
      closes, so gunicorn's own close of the same socket, next, finds it already closed.
      Nothing failed and nothing leaks; any other error closing a socket keeps its level.
    - `Worker (pid:N) was sent SIGTERM!`, once per worker: a uvicorn worker that has finished
      its graceful shutdown raises the SIGTERM it caught again, so that its exit status says
      why it stopped, and the master reports it. Any other signal (SIGKILL, SIGABRT from a
      timeout, ...) keeps its level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote a routine record; drop it if DEBUG is not logged."""
        if not self._routine(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    @staticmethod
    def _routine(record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == "Error while closing socket %s" and len(args) == 1:
            return str(args[0]).startswith(f"[Errno {errno.EBADF}]")
        if record.msg == "Worker (pid:%s) was sent %s!" and len(args) == 2:
            return args[1] == signal.SIGTERM.name
        return False


class StructlogGunicornLogger(Logger):  # type: ignore[misc]  # gunicorn has no types
    """A gunicorn logger that writes through the application's structlog configuration."""

    def setup(self, cfg: Any) -> None:
        """Route gunicorn's error log to the root handlers; the app writes the access log."""
        settings = get_settings()
        configure_logging(
            settings.log_level, settings.resolved_log_format, settings.secret_values()
        )
        for logger in (self.error_log, self.access_log):
            logger.handlers = []
            logger.propagate = logger is self.error_log
        self.error_log.setLevel(logging.getLogger().level)
        if not any(isinstance(f, RoutineShutdownFilter) for f in self.error_log.filters):
            self.error_log.addFilter(RoutineShutdownFilter())
