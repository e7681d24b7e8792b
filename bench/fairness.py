"""The service under a burst, and through a Redis crash (sections of bench/user_runs.py).

burst:        N small jobs submitted at once by one principal ("alice", 16 clients), then one
              small job by another ("bob") while the burst is still queued. Targets: alice's
              first job (the first the API accepted) succeeds within 5 s of its submit; bob's
              within 10 s; POST /predict p99 <= 200 ms while the workers are busy. When a job
              ended is read off its record, not when this (busy) client looked.
redis_crash:  one job run undisturbed, then the same job with Redis killed (-9) mid-job and
              restarted from its AOF. Target: the disturbed run ends <= 15 s after the
              undisturbed one would have. The table should make a job of several seconds,
              or the crash cannot land mid-job (reported as n/a).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests
from _stack import (
    ROOT,
    celery_worker,
    crashable_redis,
    free_port,
    gunicorn,
    redis_server,
    wait_for,
)

TOKENS = {"alice": "alice-token-0123456789abcdef", "bob": "bob-token-0123456789abcdef"}


def _principals() -> str:
    return json.dumps(
        [
            {
                "name": name,
                "token_sha256": [hashlib.sha256(token.encode()).hexdigest()],
                "scopes": ["predict", "truncate", "registry"],
            }
            for name, token in TOKENS.items()
        ]
    )


def _body(table: str, output: str) -> dict:
    return {
        "env": "dev",
        "input_table": table,
        "output_table": output,
        "model_name": "titanic-survival",
        "model_version": "v1",
    }


def _state(http, url: str, job_id: str, token: str) -> dict:
    return http.get(
        f"{url}/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()


def _service_env(env: dict[str, str], redis_url: str) -> dict[str, str]:
    return {
        **env,
        "REDIS_URL": redis_url,
        "MLSYS_API_PRINCIPALS": _principals(),
        "MLSYS_SUBMIT_RATE_LIMIT": "",
    }


def _api_cpu_s(port: int) -> float:
    """CPU seconds used so far by the gunicorn serving `port` (its master and workers, which
    share its command line)."""
    total = 0
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            if not any(b"gunicorn" in part for part in cmdline[:2]):
                continue
            if f"127.0.0.1:{port}".encode() not in cmdline:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def burst(env: dict[str, str], cpus: int, table: str, jobs: int) -> dict:
    """Submit `jobs` small jobs as alice, then one as bob; measure from the client."""
    home = Path(env["MLSYS_HOME"])
    with redis_server(home / "redis-burst") as redis_url:
        service = _service_env(env, redis_url)
        os.environ.update(service)
        port = free_port()
        with (
            gunicorn(service, port) as url,
            celery_worker(service, ROOT, concurrency=cpus, name="burst"),
        ):
            wait_for(lambda: _up(url), timeout=120, what="API")
            alice = requests.Session()
            alice.headers["Authorization"] = f"Bearer {TOKENS['alice']}"
            warm = alice.post(f"{url}/predict", json=_body(table, f"{table}_warm"), timeout=60)
            job = warm.json()["job_id"]
            wait_for(
                lambda: _state(alice, url, job, TOKENS["alice"])["state"] == "succeeded",
                timeout=300,
            )

            submits: list[tuple[float, float, str]] = []  # (sent, answered, job_id), epoch s

            def submit(i: int) -> None:
                sent = time.time()
                response = alice.post(
                    f"{url}/predict", json=_body(table, f"{table}_burst_{i % 20}"), timeout=60
                )
                submits.append((sent, time.time(), response.json().get("job_id", "")))

            started, api_cpu = time.time(), _api_cpu_s(port)
            with ThreadPoolExecutor(16) as pool:
                futures = [pool.submit(submit, i) for i in range(jobs)]
                # bob arrives when half of alice's burst is in
                wait_for(lambda: len(submits) >= jobs // 2, timeout=600, interval=0.01)
                bob_sent = time.time()
                bob_job = requests.post(
                    f"{url}/predict",
                    json=_body(table, f"{table}_bob"),
                    headers={"Authorization": f"Bearer {TOKENS['bob']}"},
                    timeout=60,
                ).json()["job_id"]
                for future in futures:
                    future.result()
            api_cpu = _api_cpu_s(port) - api_cpu  # the API's cost of the submits
            # When a job ended is read off its record (finished_at, this machine's clock), not
            # when this client looked: it is busy submitting until the burst is in.
            first_sent = min(submits)
            first_accepted = min(submits, key=lambda s: s[1])
            first_s = (
                _finished_at(alice, url, first_accepted[2], TOKENS["alice"]) - first_accepted[0]
            )
            first_sent_s = _finished_at(alice, url, first_sent[2], TOKENS["alice"]) - first_sent[0]
            bob_s = _finished_at(requests.Session(), url, bob_job, TOKENS["bob"]) - bob_sent
            latencies = [answered - sent for sent, answered, _ in submits]
            last = max(
                _finished_at(alice, url, job_id, TOKENS["alice"], timeout=3600)
                for _sent, _answered, job_id in sorted(submits, key=lambda s: s[1])[-50:]
            )
            total = time.time() - started
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    return {
        "jobs": jobs,
        "first_job_s": first_s,
        "first_sent_job_s": first_sent_s,
        "bob_job_s": bob_s,
        "submit_p50_s": p50,
        "submit_p99_s": p99,
        "api_cpu_per_submit_s": api_cpu / (jobs + 1),
        "burst_s": total,
        "last_job_done_s": last - started,
        "targets": [
            (f"burst of {jobs:,}: first job succeeds <= 5 s after its submit",
             f"{first_s:.1f} s (first sent of 16 at once: {first_sent_s:.1f} s)", first_s <= 5),
            (f"burst of {jobs:,}: another principal's job succeeds <= 10 s", f"{bob_s:.1f} s",
             bob_s <= 10),
            (f"burst of {jobs:,}: POST /predict p99 <= 200 ms (workers busy)",
             f"p99 {p99 * 1000:.0f} ms, p50 {p50 * 1000:.0f} ms; "
             f"API CPU {api_cpu / (jobs + 1) * 1000:.1f} ms a submit", p99 <= 0.2),
        ],
    }  # fmt: skip


def _wait_done(http, url, job_id, token, timeout=600.0) -> float:
    http.headers["Authorization"] = f"Bearer {token}"

    def done():
        return _state_of(http, url, job_id) in ("succeeded", "failed", "cancelled")

    wait_for(done, timeout=timeout, interval=0.02, what=f"job {job_id}")
    return time.perf_counter()


def _finished_at(http, url, job_id, token, timeout=600.0) -> float:
    """When the job ended (epoch seconds, from its record), once it has."""
    _wait_done(http, url, job_id, token, timeout)
    job = http.get(f"{url}/jobs/{job_id}", timeout=30).json()
    return datetime.fromisoformat(job["finished_at"]).timestamp()


def redis_crash(env: dict[str, str], cpus: int, table: str) -> dict:
    """A job undisturbed, then the same job with Redis killed -9 mid-job and restarted from its
    AOF at once. The disturbed run's wait is bounded, so a stall shows as a missed target."""
    home = Path(env["MLSYS_HOME"])
    shutil.rmtree(home / "redis-aof", ignore_errors=True)  # no jobs of an earlier run
    with crashable_redis(home / "redis-aof") as server:
        service = _service_env(env, server.url)
        os.environ.update(service)
        port = free_port()
        log = home / "worker-crash.log"
        with (
            gunicorn(service, port) as url,
            celery_worker(service, ROOT, concurrency=cpus, name="crash", log=log),
        ):
            wait_for(lambda: _up(url), timeout=120, what="API")
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {TOKENS['alice']}"
            body = {**_body(table, f"{table}_crash"), "write_disposition": "WRITE_TRUNCATE"}

            def submit() -> tuple[str, float]:
                started = time.perf_counter()
                return http.post(f"{url}/predict", json=body, timeout=60).json()["job_id"], started

            def ended(job_id: str) -> bool:
                return _state_of(http, url, job_id) in ("succeeded", "failed", "cancelled")

            def calm_run() -> float:
                job_id, started = submit()
                wait_for(lambda: ended(job_id), timeout=3600, interval=0.05, what="calm job")
                assert _state_of(http, url, job_id) == "succeeded"
                return time.perf_counter() - started

            calm_run()  # warm the pool processes
            calm = calm_run()
            job_id, started = submit()

            def mid_job() -> bool:
                job = _state(http, url, job_id, TOKENS["alice"])
                done, total = job["progress"]["rows_done"], job["progress"]["rows_total"]
                return job["state"] in ("succeeded", "failed") or 0 < done < total

            wait_for(mid_job, timeout=600, interval=0.02, what="the job to be mid-way")
            crashed_mid_job = not ended(job_id)
            log_seen = log.stat().st_size
            killed = time.perf_counter()
            server.crash_and_restart()
            back = time.perf_counter() - killed
            bound = calm + 120  # far past the target: the job stalled, no need to wait more
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: ended(job_id), timeout=bound, interval=0.05, what="crash job")
            crashed = time.perf_counter() - started
            state = _state_of(http, url, job_id)
        with log.open(errors="replace") as lines:
            lines.seek(log_seen)
            recovery = [line for line in lines if "broker connection back:" in line]
    extra = crashed - calm
    if not crashed_mid_job:
        figure, ok = f"the job ended before the crash ({calm:.1f} s): use a larger table", None
    elif state != "succeeded":
        figure = f"job {state or 'unknown'} after {crashed:.0f} s (undisturbed {calm:.1f} s)"
        ok = False
    else:
        figure, ok = f"+{extra:.1f} s ({crashed:.1f} s vs {calm:.1f} s)", extra <= 15
    verdict = "ok" if ok else "missed" if ok is not None else "n/a"
    gave_back = sum("dispatched" in line for line in recovery)
    restored = sum("restored" in line for line in recovery)
    print(
        f"  redis crash: {figure}, target +15 s: {verdict}; Redis down {back:.1f} s; "
        f"{gave_back} unit(s) given back, {restored} restore(s) of unacked messages",
        flush=True,
    )
    return {
        "undisturbed_s": calm,
        "with_crash_s": crashed,
        "redis_down_s": back,
        "state": state,
        "units_given_back": gave_back,
        "unacked_restores": restored,
        "targets": [
            ("job through a Redis kill -9 + restart ends <= 15 s later than undisturbed",
             figure, ok),
        ],
    }  # fmt: skip


def _state_of(http, url: str, job_id: str) -> str | None:
    """The job's state, or None while the API cannot answer (Redis restarting)."""
    try:
        return http.get(f"{url}/jobs/{job_id}", timeout=30).json().get("state")
    except (requests.RequestException, ValueError):
        return None


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.RequestException:
        return False
