"""FastAPI dependencies that reach the resources the lifespan owns."""

from __future__ import annotations

from fastapi import Request

from app.db.database import Database


async def get_database(request: Request) -> Database:
    """Return the process's `Database`, opened by the application lifespan.

    Async on purpose: FastAPI runs plain `def` dependencies in a thread pool.
    """
    database: Database = request.app.state.database
    return database
