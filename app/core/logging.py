"""structlog as the only logging path: console lines in dev, one JSON object per line elsewhere.

Standard-library loggers (uvicorn, gunicorn, SQLAlchemy, Alembic) are routed through the same
processors, so every line has the same shape, the request id and masked secrets.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
import structlog.tracebacks
from structlog.typing import EventDict, Processor, WrappedLogger

from app.core.config import LogFormat

# user:password@ in any URL-looking text.
_URL_PASSWORD = re.compile(r"(?P<prefix>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+@")
_MASK = "***"
# C0 controls, DEL and C1 controls: a terminal would act on them (colours, cursor moves, a
# cleared screen) if a request path carried them into a console line.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Loggers whose own handlers would bypass structlog; they propagate to the root instead.
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "gunicorn", "gunicorn.error", "alembic")
# uvicorn's access log is replaced by the application's own structured access log.
SILENCED_LOGGERS = ("uvicorn.access", "gunicorn.access")


class SecretMasker:
    """A structlog processor that masks URL passwords and known secret values."""

    def __init__(self) -> None:
        self._secrets: tuple[str, ...] = ()

    def register(self, secrets: Iterable[str]) -> None:
        """Add exact secret values that must never appear in a log line."""
        self._secrets = tuple(sorted({*self._secrets, *secrets}, key=len, reverse=True))

    def mask(self, text: str) -> str:
        """Return `text` with URL passwords and registered secrets replaced by `***`."""
        # Every value of every line passes here: the substring tests skip the costly work.
        if "://" in text:
            text = _URL_PASSWORD.sub(rf"\g<prefix>{_MASK}@", text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
        return text

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        """Mask every string value of the event."""
        for key, value in event_dict.items():
            if isinstance(value, str):
                event_dict[key] = self.mask(value)
        return event_dict


secret_masker = SecretMasker()


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write to whatever `sys.stdout` is at the time of each record.

    A plain StreamHandler keeps the stream it was created with, so output would go astray
    when stdout is replaced later (pytest's capture, a reopened stream).
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        """The current standard output."""
        return sys.stdout

    @stream.setter
    def stream(self, _: TextIO) -> None:
        """Ignore: the stream is always the current standard output."""


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # uvicorn adds an ANSI-coloured copy of each message as an extra.
    event_dict.pop("color_message", None)
    return event_dict


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_control_characters(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    r"""Write control characters of string values as JSON does (`\u001b`), for the console."""
    for key, value in event_dict.items():
        if isinstance(value, str) and _CONTROL_CHARACTERS.search(value):
            event_dict[key] = _CONTROL_CHARACTERS.sub(_escape, value)
    return event_dict


def _render_exception(format_: LogFormat) -> list[Processor]:
    # Tracebacks stay server-side: as a structured field in JSON, pretty in the console.
    if format_ is LogFormat.JSON:
        # Without frame locals: they hold bound SQL parameters, request bodies and tokens.
        transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        return [structlog.processors.ExceptionRenderer(transformer)]
    return []


def configure_logging(level: str, format_: LogFormat, secrets: Iterable[str] = ()) -> None:
    """Configure structlog and route the standard-library loggers through it.

    Args:
        level: Minimum level name, such as `INFO`.
        format_: Console for people, JSON (one object per line) for machines.
        secrets: Exact values to mask wherever they appear.
    """
    secret_masker.register(secrets)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        structlog.processors.UnicodeDecoder(),
        _drop_color_message,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if format_ is LogFormat.JSON
        # Plain tracebacks: rich ones print local variables, which can hold secrets.
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structlog": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "foreign_pre_chain": shared,
                    "processors": [
                        # At render time, not in the loggers' chain: loggers are cached on
                        # first use and would keep the exception handling of an earlier format.
                        *_render_exception(format_),
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        secret_masker,
                        *([] if format_ is LogFormat.JSON else [escape_control_characters]),
                        renderer,
                    ],
                }
            },
            "handlers": {"default": {"()": StdoutHandler, "formatter": "structlog"}},
            "root": {"handlers": ["default"], "level": level},
            "loggers": {
                **{name: {"handlers": [], "propagate": True} for name in ROUTED_LOGGERS},
                **{name: {"handlers": [], "propagate": False} for name in SILENCED_LOGGERS},
                "sqlalchemy": {"level": "WARNING"},
            },
        }
    )


def get_logger(name: str | None = None, **initial_values: Any) -> structlog.stdlib.BoundLogger:
    """Return a structlog logger bound to `name`."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial_values)
    return logger
