# Groundwork's production image: gunicorn + uvicorn workers on the locked production
# dependencies, running as a non-root numeric user on a read-only root filesystem.
#
#   docker build -t groundwork .          (or: podman build -t groundwork .)
#   docker run --rm -p 8000:8000 -e DATABASE_URL=postgresql://... groundwork
#   docker run --rm -e DATABASE_URL=... groundwork python -m app migrate
#
# Both stages use the same base, so the virtualenv's interpreter exists at the same path at
# run time. `make image-test` builds this file unchanged on a locally built stand-in base.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder

# Build-only: a CA bundle to trust behind an intercepting proxy; unset on a normal network.
ARG SSL_CERT_FILE
ARG UV_VERSION=0.13.9
# uv lives in a throwaway virtualenv of this stage (the base may have no pip of its own).
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --quiet --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON=python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_NO_CACHE=1
WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project

COPY alembic.ini ./
COPY alembic/ alembic/
COPY app/ app/
# The root filesystem is read-only at run time: compile the code now, not on every start.
RUN python3 -m compileall -q app alembic

FROM ${BASE_IMAGE}

RUN groupadd --gid 10001 groundwork \
    && useradd --uid 10001 --gid 10001 --no-create-home --no-log-init --home-dir /nonexistent \
        --shell /usr/sbin/nologin groundwork

WORKDIR /app
# Only the virtualenv and the code, owned by root so that the app cannot change itself.
# skaffold's dev profile syncs edited files into the running container: it builds with
# APP_CODE_OWNER=10001:10001.
ARG APP_CODE_OWNER=0:0
COPY --from=builder /app/.venv /app/.venv
COPY --from=builder /app/alembic.ini /app/alembic.ini
COPY --from=builder /app/alembic /app/alembic
COPY --from=builder --chown=${APP_CODE_OWNER} /app/app /app/app

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    ENV=prod \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics

EXPOSE 8000
USER 10001:10001
# Exec form: gunicorn's master is PID 1 (`serve` execs it) and receives SIGTERM directly.
CMD ["python", "-m", "app", "serve"]
