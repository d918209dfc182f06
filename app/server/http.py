"""The uvicorn worker gunicorn runs: bounded request heads, a head deadline, a concurrency cap.

uvicorn ignores gunicorn's `limit_request_line`, `limit_request_fields` and
`limit_request_field_size`, and httptools buffers a header until its line ends: one 50 MB
header was read whole into a worker. Here the head of a request is bounded while it arrives;
an over-limit request is answered (414 for the line, 431 for the headers) and the connection
closed before anything more is read, and before the application sees it.

uvicorn has no deadline for a request head either: a connection that never finished its
headers stayed open for good. Here a head must be complete within `HEADER_READ_TIMEOUT`
seconds of the connection opening (or of the request's first byte on a kept-alive one).

uvicorn's `limit_concurrency` (which uvicorn-worker does not pass on) counts open connections,
unfinished heads included: 1,000 slowloris connections would make it answer every real
request 503. The cap here counts requests the application is running (`WORKER_MAX_CONCURRENCY`
per worker); past it a request is answered 503 problem+json with `Retry-After` at once,
instead of waiting in the worker for a database connection. `/health` (liveness) is exempt:
an overloaded worker is not a dead one.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, ClassVar

from gunicorn.arbiter import Arbiter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from app.core.config import get_server_settings
from app.core.errors import PROBLEM_TYPE_BASE
from app.server.recycling import RecyclingServer, WorkerRegistry

_PHRASES = {
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
_LIVENESS_PATH = b"/health"
BUSY_RETRY_AFTER_SECONDS = 1


def _problem(slug: str, status: int, detail: str) -> bytes:
    return json.dumps(
        {
            "type": PROBLEM_TYPE_BASE + slug,
            "title": _PHRASES[status],
            "status": status,
            "detail": detail,
        }
    ).encode()


async def _worker_busy(scope: Any, receive: Any, send: Any) -> None:
    """The answer to a request past the worker's concurrency cap (an ASGI app)."""
    body = _problem(
        "server-busy", 503, "The server is handling as many requests as it can; retry later."
    )
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(BUSY_RETRY_AFTER_SECONDS).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestHeadTooLargeError(Exception):
    """A request line or header passed its limit; raised inside the parser's callbacks."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools' HTTP/1.1 protocol with bounded request lines and headers."""

    limit_request_line: ClassVar[int] = 4094
    limit_request_fields: ClassVar[int] = 100
    limit_request_field_size: ClassVar[int] = 8190
    # The whole head, counted as it arrives: the parser buffers an unfinished header.
    limit_request_head: ClassVar[int] = 32_768
    header_read_timeout: ClassVar[float] = 10.0
    max_concurrency: ClassVar[int] = 100

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start counting the first request's head, and its deadline."""
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._refusal: tuple[int, str] | None = None
        self._field_count = 0
        self._head_deadline: asyncio.TimerHandle | None = None
        self._draining = False
        self._start_head_deadline()

    def shutdown(self) -> None:
        """Answer the first request of a connection accepted but not yet read, then close.

        uvicorn closes such a connection at once, and asyncio accepts a burst of waiting
        connections at a time: a worker leaving under load reset requests already sent to it.
        Its head deadline still bounds how long it may keep the worker.
        """
        if self.cycle is None:
            self._draining = True
            return
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline of a head that will never come."""
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _start_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(
                self.header_read_timeout, self._head_timed_out
            )

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        """Close a connection whose head is late: 408 if part of it came, silently if none."""
        self._head_deadline = None
        if self._head_bytes:
            self._refuse(
                408,
                f"The request head was not complete within {self.header_read_timeout:g} s.",
                slug="request-timeout",
            )
        elif not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        """Refuse a head that grows past its limit before the parser buffers more of it."""
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limit_request_head:
                self._refuse(431, f"The request head exceeds {self.limit_request_head} bytes.")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        """Count this request's head from zero; on a kept-alive connection, start its deadline."""
        super().on_message_begin()
        self._field_count = 0
        self._start_head_deadline()

    def on_url(self, url: bytes) -> None:
        """Refuse a request target longer than the request-line limit."""
        super().on_url(url)
        if len(self.url) > self.limit_request_line:
            self._fail(414, f"The request target exceeds {self.limit_request_line} bytes.")

    def on_header(self, name: bytes, value: bytes) -> None:
        """Refuse a header past the size limit, or one header too many."""
        self._field_count += 1
        if self._field_count > self.limit_request_fields:
            self._fail(431, f"The request has more than {self.limit_request_fields} headers.")
        if len(name) + len(value) + 2 > self.limit_request_field_size:
            self._fail(431, f"A header exceeds {self.limit_request_field_size} bytes.")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is complete: its bytes and its deadline stop; the cap may answer 503."""
        self._in_head = False
        self._cancel_head_deadline()
        if len(self.tasks) < self.max_concurrency or self._is_liveness_probe():
            super().on_headers_complete()
        else:
            self.logger.warning("request refused: %d requests in progress", len(self.tasks))
            app, self.app = self.app, _worker_busy
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False

    def _is_liveness_probe(self) -> bool:
        return self.url.partition(b"?")[0] == _LIVENESS_PATH

    def on_message_complete(self) -> None:
        """The next request's head starts counting."""
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def _fail(self, status: int, detail: str) -> None:
        self._refusal = (status, detail)
        # httptools turns the exception into HttpParserCallbackError: send_400_response.
        raise RequestHeadTooLargeError(detail)

    def send_400_response(self, msg: str) -> None:
        """Answer a refused head with its own status; other parse errors keep their 400."""
        if self._refusal is None:
            super().send_400_response(msg)
            return
        self._refuse(*self._refusal)

    def _refuse(self, status: int, detail: str, slug: str = "request-head-too-large") -> None:
        body = _problem(slug, status, detail)
        head = (
            f"HTTP/1.1 {status} {_PHRASES[status]}\r\n"
            "content-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        self.logger.warning("request refused: %s", detail)
        self._in_head = False
        if not self.transport.is_closing():
            self.transport.write(head + body)
            self.transport.close()


class BoundedUvicornWorker(UvicornWorker):  # type: ignore[misc]  # uvicorn_worker has no types
    """uvicorn's gunicorn worker with gunicorn's request limits and recycling without a gap."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": BoundedHttpToolsProtocol}  # noqa: RUF012

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Take the limits from gunicorn's settings (one worker per process)."""
        super().__init__(*args, **kwargs)
        BoundedHttpToolsProtocol.limit_request_line = self.cfg.limit_request_line
        BoundedHttpToolsProtocol.limit_request_fields = self.cfg.limit_request_fields
        BoundedHttpToolsProtocol.limit_request_field_size = self.cfg.limit_request_field_size
        settings = get_server_settings()
        BoundedHttpToolsProtocol.limit_request_head = settings.limit_request_head
        BoundedHttpToolsProtocol.header_read_timeout = settings.header_read_timeout
        BoundedHttpToolsProtocol.max_concurrency = settings.worker_max_concurrency

    async def _serve(self) -> None:
        """uvicorn-worker's own `_serve`, with a server that leaves only when siblings are ready."""
        self.config.app = self.wsgi
        server = RecyclingServer(self.config, WorkerRegistry.from_environment(self.cfg.workers))
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
