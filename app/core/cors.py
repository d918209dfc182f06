"""CORS for browser front ends on another origin; off unless origins are configured."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.core.config import Settings

# Headers a browser front end on another origin may send and read.
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "If-Match", "X-Request-ID"]
CORS_RESPONSE_HEADERS = ["ETag", "Location", "Retry-After", "WWW-Authenticate", "X-Request-ID"]


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Answer preflights and label responses for `CORS_ALLOWED_ORIGINS`, if any are set."""
    if not settings.cors_allowed_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_allowed_origins),
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_RESPONSE_HEADERS,
        max_age=600,
    )
