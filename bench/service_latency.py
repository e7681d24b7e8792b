"""Submit-to-running latency with an idle worker, and GET /jobs/{id} throughput under gunicorn.

    uv run python bench/service_latency.py [--jobs 100] [--seconds 10]

Targets (2-core machine): latency p50 <= 20 ms, p99 <= 100 ms; >= 1,000 req/s.
Latency is the job record's started_at (the worker claimed the first unit) minus submitted_at
(the API recorded it), both stamped by the same clock.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time
from datetime import datetime

import requests
from _stack import bench_env, celery_worker, free_port, gunicorn, redis_server, temp_home, wait_for

from mlsys.cli.demo import run_demo
from mlsys.settings import Settings
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with temp_home() as home, redis_server(home / "redis") as redis_url:
        env = bench_env(home, redis_url)
        settings = Settings(_env_file=None)
        run_demo(
            open_warehouse(settings=settings),
            open_store(settings=settings),
            settings,
            rows=1_000,
            say=lambda *_: None,
        )
        port = free_port()
        with gunicorn(env, port) as url, celery_worker(env, home, concurrency=1):
            wait_for(lambda: _up(url), timeout=60, what="API")
            body = {
                "env": "dev",
                "input_table": "mlsys-local.titanic.passengers",
                "output_table": "mlsys-local.titanic.bench",
                "model_name": "titanic-survival",
                "model_version": "v1",
            }
            http = requests.Session()
            latencies, submit_times = [], []
            job_id = None
            for _ in range(args.jobs + 3):
                t0 = time.perf_counter()
                response = http.post(f"{url}/predict", json=body, timeout=10)
                submit_times.append(time.perf_counter() - t0)
                job_id = response.json()["job_id"]
                job = wait_for(lambda j=job_id: _finished(http, url, j), timeout=60, interval=0.01)
                latencies.append(_seconds(job["started_at"]) - _seconds(job["submitted_at"]))
            latencies, submit_times = latencies[3:], submit_times[3:]  # warm-up
            print(f"jobs measured                 {len(latencies)}")
            print(
                f"POST /predict answer   p50    {_ms(submit_times, 50):7.1f} ms"
                f"   p99 {_ms(submit_times, 99):7.1f} ms"
            )
            print(
                f"submit-to-running      p50    {_ms(latencies, 50):7.1f} ms"
                f"   p99 {_ms(latencies, 99):7.1f} ms   (target <= 20 / <= 100)"
            )
            print(_throughput(f"{url}/jobs/{job_id}", args.seconds))


def _up(url):
    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.RequestException:
        return False


def _finished(http, url, job_id):
    job = http.get(f"{url}/jobs/{job_id}", timeout=5).json()
    return job if job["state"] in ("succeeded", "failed") else None


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _ms(values, pct):
    return 1000 * statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _throughput(url: str, seconds: int) -> str:
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{seconds}s", url], capture_output=True, text=True
        ).stdout
        rate = next(line for line in out.splitlines() if "Requests/sec" in line).split()[-1]
        return (
            f"GET /jobs/{{id}} throughput {float(rate):9.0f} req/s (wrk -t2 -c16; target >= 1000)"
        )
    http = requests.Session()
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        http.get(url, timeout=5)
        count += 1
    return (
        f"GET /jobs/{{id}} throughput {count / seconds:9.0f} req/s (one Python client; install wrk)"
    )


if __name__ == "__main__":
    main()
