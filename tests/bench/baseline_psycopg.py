"""Baseline for the database-backed endpoints: bare FastAPI on a plain psycopg pool.

It runs the SQL the application ran before it had identity (a single read in autocommit,
everything else in one transaction, the row-level security setting on task routes, keyset
pages of `limit + 1` rows) and returns the rows as JSON, with nothing around it: no ORM, no
middleware, no metrics, no logging, no problem details. It verifies the bearer token with the
same joserfc calls as the application (keys fetched once at startup from the provider's JWKS),
so the ratio compares framework and data-layer costs, not authentication; it takes the user
from the path, not from the token.

The users table has row-level security now, so the one-user read sets the acting user too,
in the same round trip: two statements in one simple query, which PostgreSQL runs as one
implicit transaction.

Settings: `BASELINE_DATABASE_URL`, `OIDC_ISSUER`, `OIDC_AUDIENCE`, and pool bounds
`BASELINE_POOL_MIN`, `BASELINE_POOL_MAX`, `BASELINE_POOL_TIMEOUT` (the harness copies the
application's defaults).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from tests.bench.tokens import claims_registry

USER_COLUMNS = "id, version, created_at, updated_at, issuer, subject, email, full_name, is_active"
TASK_COLUMNS = "id, version, created_at, updated_at, user_id, title, description, status, due_date"
ACTING_USER = "SELECT set_config('app.current_user_id', %s, true)"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
    """Open the pool in the worker, after gunicorn forked it."""
    pool = AsyncConnectionPool(
        os.environ["BASELINE_DATABASE_URL"],
        min_size=int(os.environ.get("BASELINE_POOL_MIN", "5")),
        max_size=int(os.environ.get("BASELINE_POOL_MAX", "10")),
        timeout=float(os.environ.get("BASELINE_POOL_TIMEOUT", "2")),
        kwargs={"row_factory": dict_row, "autocommit": True},
        open=False,
    )
    await pool.open()
    app.state.pool = pool
    app.state.keys = await provider_keys(os.environ["OIDC_ISSUER"])
    app.state.claims = claims_registry(os.environ["OIDC_ISSUER"], os.environ["OIDC_AUDIENCE"])
    try:
        yield
    finally:
        await pool.close()


async def provider_keys(issuer: str) -> KeySet:
    """Fetch the provider's signing keys once, through its discovery document."""
    async with httpx.AsyncClient(timeout=10) as client:
        discovery = (await client.get(f"{issuer}/.well-known/openid-configuration")).json()
        return KeySet.import_key_set((await client.get(discovery["jwks_uri"])).json())


async def verified_bearer(request: Request) -> None:
    """Verify the request's bearer token (signature, then claims), or answer 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise HTTPException(status_code=401)
    try:
        claims = jwt.decode(token, request.app.state.keys, algorithms=["RS256"]).claims
        request.app.state.claims.validate(claims)
    except (JoseError, ValueError) as error:
        raise HTTPException(status_code=401) from error


app = FastAPI(lifespan=lifespan)
api = APIRouter(dependencies=[Depends(verified_bearer)])


class TaskIn(BaseModel):
    """A new task."""

    title: str
    description: str | None = None
    status: str = "todo"
    due_date: date | None = None


class TaskChanges(BaseModel):
    """The one change the benchmark sends."""

    title: str


@asynccontextmanager
async def connection(request: Request) -> AsyncGenerator[AsyncConnection[DictRow], None]:
    """Borrow a connection in autocommit, for a single statement."""
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = request.app.state.pool
    async with pool.connection() as borrowed:
        yield borrowed


@asynccontextmanager
async def transaction(request: Request) -> AsyncGenerator[AsyncConnection[DictRow], None]:
    """Borrow a connection inside a transaction: commit on success, roll back on error."""
    async with connection(request) as borrowed, borrowed.transaction():
        yield borrowed


def found(row: DictRow | None) -> DictRow:
    """Return the row, or answer 404."""
    if row is None:
        raise HTTPException(status_code=404)
    return row


@app.get("/health/db")
async def readiness(request: Request) -> dict[str, Any]:
    """Read the schema revision, like the application's readiness probe."""
    async with transaction(request) as db:
        row = await (await db.execute("SELECT version_num FROM alembic_version")).fetchone()
    return {"status": "ok", "revision": found(row)["version_num"]}


@api.get("/api/v1/users/{user_id}")
async def get_user(request: Request, user_id: uuid.UUID) -> DictRow:
    """Return one user row."""
    # Without parameters psycopg sends the simple query protocol, which runs several statements;
    # the id is a parsed UUID, so quoting it as a literal is safe.
    query = sql.SQL(
        "SELECT set_config('app.current_user_id', {id}, true);"
        f" SELECT {USER_COLUMNS} FROM users WHERE id = {{id}}"
    ).format(id=sql.Literal(str(user_id)))
    async with connection(request) as db:
        cursor = await db.execute(query)
        cursor.nextset()
        return found(await cursor.fetchone())


@api.get("/api/v1/users/{user_id}/tasks")
async def list_tasks(
    request: Request,
    user_id: uuid.UUID,
    limit: int = Query(50, ge=1, le=100),
    cursor: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Return one keyset page of the user's tasks."""
    keyset = "" if cursor is None else " AND id > %(cursor)s"
    async with transaction(request) as db:
        await db.execute(ACTING_USER, [str(user_id)])
        user = await (await db.execute("SELECT id FROM users WHERE id = %s", [user_id])).fetchone()
        found(user)
        rows = await (
            await db.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = %(user)s{keyset}"
                " ORDER BY id LIMIT %(limit)s",
                {"user": user_id, "cursor": cursor, "limit": limit + 1},
            )
        ).fetchall()
    items = rows[:limit]
    return {"items": items, "next_cursor": items[-1]["id"] if len(rows) > limit else None}


@api.get("/api/v1/users/{user_id}/tasks/{task_id}")
async def get_task(request: Request, user_id: uuid.UUID, task_id: uuid.UUID) -> DictRow:
    """Return one task row, acting as its owner like the other task routes."""
    async with transaction(request) as db:
        await db.execute(ACTING_USER, [str(user_id)])
        cursor = await db.execute(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = %s AND user_id = %s", [task_id, user_id]
        )
        return found(await cursor.fetchone())


@api.post("/api/v1/users/{user_id}/tasks", status_code=201)
async def create_task(request: Request, user_id: uuid.UUID, task: TaskIn) -> DictRow:
    """Insert a task and return its row."""
    async with transaction(request) as db:
        await db.execute(ACTING_USER, [str(user_id)])
        cursor = await db.execute(
            "INSERT INTO tasks (id, version, created_at, updated_at, user_id, title, description,"
            " status, due_date) VALUES (uuidv7(), 1, now(), now(), %s, %s, %s, %s, %s)"
            f" RETURNING {TASK_COLUMNS}",
            [user_id, task.title, task.description, task.status, task.due_date],
        )
        return found(await cursor.fetchone())


@api.patch("/api/v1/users/{user_id}/tasks/{task_id}")
async def update_task(
    request: Request, user_id: uuid.UUID, task_id: uuid.UUID, changes: TaskChanges
) -> DictRow:
    """Change a task's title, bump its version and return its row."""
    async with transaction(request) as db:
        await db.execute(ACTING_USER, [str(user_id)])
        cursor = await db.execute(
            "UPDATE tasks SET title = %s, version = version + 1, updated_at = now()"
            f" WHERE id = %s AND user_id = %s RETURNING {TASK_COLUMNS}",
            [changes.title, task_id, user_id],
        )
        return found(await cursor.fetchone())


app.include_router(api)
