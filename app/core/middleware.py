"""Pure ASGI middleware: request id, access log, the last-resort 500 and the body size limit.

Pure ASGI (rather than `BaseHTTPMiddleware`) keeps the per-request cost low and lets the
body limit act on the stream before anything is read into memory.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from http import HTTPStatus

import structlog
from prometheus_fastapi_instrumentator import routing
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import internal_error_response, problem_response
from app.core.logging import get_logger

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes and scrapes arrive every few seconds: they would drown real traffic in the access log
# at info level and in the request metrics.
PROBE_AND_SCRAPE_PATHS = frozenset({"/health", "/health/db", "/metrics"})

access_logger = get_logger("groundwork.access")
error_logger = get_logger("groundwork.error")


LIVENESS_PATH = "/health"
LIVENESS_BODY = b'{"status":"ok"}'


class LivenessMiddleware:
    """Answer `GET /health` before anything else runs.

    Liveness must cost next to nothing and depend on nothing that could hang: kubelet
    restarts the pod when it fails. The route in `app.health` documents the same answer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http" or scope["path"] != LIVENESS_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(LIVENESS_BODY)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": LIVENESS_BODY})


class PayloadTooLargeError(Exception):
    """The request body exceeded the configured limit while streaming."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


UNMATCHED_ROUTE = "<unmatched>"  # the metrics' `handler="none"`


def route_template(scope: Scope, arrived: Scope) -> str:
    """The route template of a served request: the access log's `route`, the metrics' `handler`.

    FastAPI's routes put themselves in the scope. The OpenAPI document's Starlette route, the
    mounted docs assets and a request refused before routing (a 413) do not: they are matched
    against the app's routes as prometheus-fastapi-instrumentator would, with the scope as it
    `arrived` (a mount has since moved its `root_path`).
    """
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    name = routing.get_route_name(Request(arrived), should_include_root_path=False)
    return name or UNMATCHED_ROUTE


class BodySizeLimitMiddleware:
    """Answer 413 once a request body passes the limit, before it is read into memory."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        declared = _header(scope, b"content-length") if scope["type"] == "http" else None
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._reject(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        received = 0
        too_large = response_started = False

        async def receive_limited() -> Message:
            nonlocal received, too_large
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                too_large = True
                raise PayloadTooLargeError
            return message

        async def send_unless_too_large(message: Message) -> None:
            nonlocal response_started
            # Frameworks answer a failed body read with their own 400; the 413 replaces it.
            if too_large and not response_started:
                return
            response_started = True
            await send(message)

        with contextlib.suppress(PayloadTooLargeError):
            await self.app(scope, receive_limited, send_unless_too_large)
        if too_large and not response_started:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"The body exceeds {self.max_body_bytes} bytes."
        response = problem_response(Request(scope), HTTPStatus.REQUEST_ENTITY_TOO_LARGE, detail)
        await response(scope, receive, send)


class RequestContextMiddleware:
    """Bind a request id to every log line, write the access log and catch the unexpected."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming = _header(scope, REQUEST_ID_HEADER.encode())
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)

        started = time.perf_counter()
        arrived = dict(scope)
        status = HTTPStatus.INTERNAL_SERVER_ERROR.value
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            error_logger.exception("unhandled_error", path=scope["path"])
            if not response_started:
                await internal_error_response(Request(scope))(scope, receive, send_with_request_id)
        finally:
            self._log_access(scope, arrived, status, started)
            structlog.contextvars.clear_contextvars()

    @staticmethod
    def _log_access(scope: Scope, arrived: Scope, status: int, started: float) -> None:
        client = scope.get("client")
        log = access_logger.debug if scope["path"] in PROBE_AND_SCRAPE_PATHS else access_logger.info
        log(
            "request",
            method=scope["method"],
            path=scope["path"],
            route=route_template(scope, arrived),
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            client=client[0] if client else None,
            # Set by app.identity once the bearer token is verified; the token is never logged.
            subject=scope.get("state", {}).get("subject"),
            pid=os.getpid(),
        )
