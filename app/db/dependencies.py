"""FastAPI dependencies that reach the resources the lifespan owns."""

from __future__ import annotations

from fastapi import Request

from app.db.database import Database


def get_database(request: Request) -> Database:
    """Return the process's `Database`, opened by the application lifespan."""
    database: Database = request.app.state.database
    return database
