# syntax=docker/dockerfile:1
# One image for the four mlsys processes: web (gunicorn), worker, beat and flower (Celery).
# The process is chosen by the first argument of docker/start (default: web).
#
# Base images are build arguments so an offline build can pass local ones:
#   UV_IMAGE     builder base; any Debian-like image with python3 >= 3.11. If uv is missing
#                there, it is installed with pip at UV_VERSION.
#   PYTHON_IMAGE runtime base; must carry the same Python (same path) as the builder, since
#                the virtual environment is copied over as is.
ARG UV_IMAGE=ghcr.io/astral-sh/uv:python3.12-bookworm-slim
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# checkov:skip=CKV_DOCKER_7:the bases are build arguments (default tags python3.12-bookworm-slim / python:3.12-slim-bookworm, not latest); checkov cannot resolve ARGs
FROM ${UV_IMAGE} AS builder

ARG UV_VERSION=0.13.9
# Networks that re-sign TLS need their CA bundle for pip and uv: the offline smoke test passes
# the host's (bind-mounted during the build). Unset by default.
ARG SSL_CERT_FILE
ARG PIP_CERT

# https://docs.astral.sh/uv/guides/integration/docker/
# Compile bytecode at build time (faster cold starts on Cloud Run), never download a Python
# (use the base image's), and copy from the cache mount instead of hard-linking into it.
ENV UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=0 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Plain Python bases (the offline smoke test's debootstrap image) have no uv: install it into
# its own venv so the system Python stays untouched (PEP 668).
RUN if ! command -v uv >/dev/null 2>&1; then \
        python3 -m venv /opt/uv \
        && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}" \
        && ln -s /opt/uv/bin/uv /usr/local/bin/uv; \
    fi \
    && uv --version

WORKDIR /app

# Dependencies first, from the lock alone: this layer is reused until uv.lock changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=/app/uv.lock \
    --mount=type=bind,source=pyproject.toml,target=/app/pyproject.toml \
    uv sync --frozen --no-install-project --no-dev --extra gcp

# Then the project itself, installed as a wheel (not editable) so the runtime needs only .venv.
COPY . /app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra gcp --no-editable


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="mlsys" \
      org.opencontainers.image.description="Batch predictions for scikit-learn models over warehouse tables"

ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLSYS_HOME=/data \
    PORT=8000

RUN groupadd --system --gid 10001 mlsys \
    && useradd --system --uid 10001 --gid mlsys --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin mlsys \
    && mkdir -p /app /data \
    && chown mlsys:mlsys /app /data

# Root-owned: the app user can run the environment but not change it.
COPY --from=builder /app/.venv /app/.venv
COPY --chmod=0755 docker/start /usr/local/bin/start

USER 10001:10001
WORKDIR /app
# MLSYS_HOME: the embedded warehouse and model store; compose mounts a shared volume here.
VOLUME ["/data"]
EXPOSE 8000 5555

# Liveness of the web process; compose overrides it for worker, beat and flower.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]

ENTRYPOINT ["start"]
CMD ["web"]
