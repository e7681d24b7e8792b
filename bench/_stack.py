"""A throwaway mlsys stack for benchmarks: private Redis, temp MLSYS_HOME, real processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import celery_worker, free_port, kill_group, redis_server, wait_for  # noqa: E402

__all__ = ["ROOT", "bench_env", "celery_worker", "free_port", "gunicorn", "kill_group",
           "redis_server", "temp_home", "wait_for"]


@contextlib.contextmanager
def temp_home():
    with tempfile.TemporaryDirectory(prefix="mlsys-bench-") as folder:
        yield Path(folder)


def bench_env(home: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSYS_", "GCP_", "GCS_"))}
    env.update({"MLSYS_HOME": str(home / "home"), "REDIS_URL": redis_url,
                "MLSYS_REGISTRY_SYNC_INTERVAL": "0", **extra})
    os.environ.update(env)
    return env


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int = 2, threads: int = 4):
    log = open(Path(env["MLSYS_HOME"]) / "gunicorn.log", "ab")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "web:create_app()"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()
