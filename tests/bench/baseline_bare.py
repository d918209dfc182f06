"""Baseline for `/health`: a bare FastAPI app whose handler returns a constant."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    """Return a constant: the least any FastAPI endpoint can do."""
    return {"status": "ok"}
