"""A throwaway mlsys stack for benchmarks: private Redis, temp MLSYS_HOME, real processes."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import (  # noqa: E402
    celery_worker,
    crashable_redis,
    free_port,
    gunicorn_command,
    kill_group,
    process,
    redis_server,
    wait_for,
)

__all__ = [
    "ROOT",
    "bench_env",
    "celery_worker",
    "crashable_redis",
    "free_port",
    "gunicorn",
    "kill_group",
    "redis_server",
    "temp_home",
    "wait_for",
]


@contextlib.contextmanager
def temp_home():
    with tempfile.TemporaryDirectory(prefix="mlsys-bench-") as folder:
        yield Path(folder)


def bench_env(home: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSYS_", "GCP_", "GCS_"))}
    env.update(
        {
            "MLSYS_HOME": str(home / "home"),
            "REDIS_URL": redis_url,
            "MLSYS_REGISTRY_SYNC_INTERVAL": "0",
            **extra,
        }
    )
    os.environ.update(env)
    return env


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int = 2, threads: int = 16):
    """The API as the Procfile and docker/start run it (2 workers of 16 threads)."""
    args = gunicorn_command(port, workers, threads)
    with process(args, env, ROOT, Path(env["MLSYS_HOME"]) / "gunicorn.log"):
        yield f"http://127.0.0.1:{port}"
