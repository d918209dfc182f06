"""Groundwork: an async FastAPI + PostgreSQL service foundation for Kubernetes."""

__version__ = "0.1.0"
