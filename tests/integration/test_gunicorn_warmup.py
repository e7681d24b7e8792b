"""Every gunicorn worker warms up before it takes traffic (web/warmup.py), and a worker whose
warm-up failed keeps serving but does not report ready."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from tests.services import free_port, gunicorn_command, isolated_env, process, repo_root, wait_for

pytestmark = pytest.mark.integration

WORKERS = 2
THREADS = 3
DONE = re.compile(r"warm-up of process (\d+) done in \S+ \(done: ([^;)]*)\)")


def _gunicorn(tmp_path: Path, redis_url: str, port: int):
    env = isolated_env(MLSYS_HOME=str(tmp_path / "home"), REDIS_URL=redis_url)
    args = gunicorn_command(port, WORKERS, THREADS)
    return process(args, env, repo_root(), tmp_path / "gunicorn.log")


def _booted(log: Path) -> set[int]:
    return {int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", log.read_text())}


def test_every_worker_warms_up_before_its_first_request(tmp_path, redis_url, redis_client):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    before = len(redis_client.client_list())
    with _gunicorn(tmp_path, redis_url, port):
        wait_for(lambda: len(_booted(log)) == WORKERS, timeout=60, what="workers")
        # The warm-up runs before a worker accepts: once each worker has logged it, the first
        # request any of them serves is a warm one.
        wait_for(lambda: len(DONE.findall(log.read_text())) == WORKERS, timeout=60, what="warm")
        # Each request thread held a job-store connection and a broker producer of its own at
        # once: a burst of submits finds them open.
        opened = len(redis_client.client_list()) - before
        readies = [requests.get(f"{url}/ready", timeout=10) for _ in range(4)]
        text = log.read_text()

    warmed = {int(pid): steps.split(", ") for pid, steps in DONE.findall(text)}
    assert set(warmed) == _booted(log)
    for steps in warmed.values():
        # Redis (jobs, rate limits), the broker's producer, the warehouse (registry read,
        # DuckDB started) in this thread and in every request thread, the URL map.
        assert set(steps) >= {"redis", "warehouse", "model_store", "broker", "routes", "threads"}
    assert opened >= WORKERS * THREADS * 2
    # The warm-up's log precedes every request the worker served.
    assert text.index("warm-up of process") < text.index('"path":"/ready"')
    for ready in readies:
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["warm_up"]["ok"] is True


def test_a_worker_that_could_not_warm_up_serves_but_is_not_ready(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with _gunicorn(tmp_path, dead_redis, port):
        wait_for(lambda: "warm-up of process" in log.read_text(), timeout=90, what="warm-up")
        health = requests.get(f"{url}/health", timeout=10)
        ready = requests.get(f"{url}/ready", timeout=30)
        text = log.read_text()

    # The worker lived on: it logged what failed, answers /health, and is not ready.
    assert re.search(r"warm-up of process \d+ incomplete .*failed: .*redis.*broker", text)
    assert "Worker exiting" not in text.split("Handling signal")[0]
    assert health.status_code == 200
    assert ready.status_code == 503
    warm_up = ready.json()["checks"]["warm_up"]
    assert warm_up["ok"] is False and "redis" in warm_up["detail"]
