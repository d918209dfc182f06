"""gunicorn's own log lines, sent through structlog like everything else."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

from app.core.config import get_settings
from app.core.logging import configure_logging


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
