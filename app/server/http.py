"""The uvicorn worker gunicorn runs, with the request-head limits gunicorn's own workers apply.

uvicorn ignores gunicorn's `limit_request_line`, `limit_request_fields` and
`limit_request_field_size`, and httptools buffers a header until its line ends: one 50 MB
header was read whole into a worker. Here the head of a request is bounded while it arrives;
an over-limit request is answered (414 for the line, 431 for the headers) and the connection
closed before anything more is read, and before the application sees it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from app.core.config import get_server_settings

_PHRASES = {414: "URI Too Long", 431: "Request Header Fields Too Large"}


class RequestHeadTooLargeError(Exception):
    """A request line or header passed its limit; raised inside the parser's callbacks."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools' HTTP/1.1 protocol with bounded request lines and headers."""

    limit_request_line: ClassVar[int] = 4094
    limit_request_fields: ClassVar[int] = 100
    limit_request_field_size: ClassVar[int] = 8190
    # The whole head, counted as it arrives: the parser buffers an unfinished header.
    limit_request_head: ClassVar[int] = 32_768

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start counting the first request's head."""
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._refusal: tuple[int, str] | None = None
        self._field_count = 0

    def data_received(self, data: bytes) -> None:
        """Refuse a head that grows past its limit before the parser buffers more of it."""
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limit_request_head:
                self._refuse(431, f"The request head exceeds {self.limit_request_head} bytes.")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        """Count this request's head from zero."""
        super().on_message_begin()
        self._field_count = 0

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
        """The head is complete: its bytes stop counting until the next request."""
        self._in_head = False
        super().on_headers_complete()

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

    def _refuse(self, status: int, detail: str) -> None:
        body = json.dumps(
            {
                "type": "https://groundwork.dev/problems/request-head-too-large",
                "title": _PHRASES[status],
                "status": status,
                "detail": detail,
            }
        ).encode()
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
    """uvicorn's gunicorn worker with gunicorn's request limits applied."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": BoundedHttpToolsProtocol}  # noqa: RUF012

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Take the limits from gunicorn's settings (one worker per process)."""
        super().__init__(*args, **kwargs)
        BoundedHttpToolsProtocol.limit_request_line = self.cfg.limit_request_line
        BoundedHttpToolsProtocol.limit_request_fields = self.cfg.limit_request_fields
        BoundedHttpToolsProtocol.limit_request_field_size = self.cfg.limit_request_field_size
        BoundedHttpToolsProtocol.limit_request_head = get_server_settings().limit_request_head
