"""Redis memory after many jobs and sign-ins, and after their TTLs pass: back to the baseline?

    uv run python bench/redis_memory.py [--jobs 10000] [--signins 1000] [--ttl 30]

Everything mlsys keeps in Redis must expire or be pruned. This records `--jobs` jobs as the API
does (record, listing indexes, idempotency keys) and ends them, and signs in `--signins` times
through the real app's sign-in form. With short TTLs for finished jobs and sessions (`--ttl`
seconds, longer than the load takes) it then waits for them to pass, runs the workers'
periodic index prune once, and prints Redis' used memory and key count at each stage. Goal:
the last figure at the baseline.
"""

from __future__ import annotations

import argparse
import logging
import time

import redis
from _stack import bench_env, redis_server, temp_home

from mlsys.jobs import JobKind, JobStore, NewJob
from mlsys.settings import Settings
from web import create_app
from web.ui.guard import CSRF_COOKIE
from web.ui.sessions import SessionStore

TOKEN = "bench-admin-token-0123456789"


def _memory(client: redis.Redis) -> tuple[int, int]:
    # SCAN touches every key, so keys past their TTL are dropped before memory is read.
    for _ in client.scan_iter(count=1000):
        pass
    client.execute_command("MEMORY", "PURGE")  # give freed pages back before measuring
    info = client.info("memory")
    return int(info["used_memory"]), int(client.dbsize())


def _show(stage: str, figures: tuple[int, int], baseline: tuple[int, int]) -> None:
    used, keys = figures
    print(
        f"{stage:<38} used_memory {used / 1024:>9.1f} KiB  "
        f"({(used - baseline[0]) / 1024:>+9.1f} KiB)  keys {keys:>6} ({keys - baseline[1]:+d})"
    )


def _jobs(store: JobStore, count: int) -> None:
    principals = [f"principal-{i}" for i in range(10)]
    for i in range(count):
        params = {"env": "dev", "n": i}
        new = NewJob(JobKind.PREDICT, params, principals[i % 10], idempotency_key=f"k{i}")
        job, _ = store.create(new)
        store.succeed(job.job_id, {"rows_written": 1})


def _signins(settings: Settings, client: redis.Redis, count: int, ttl: int) -> int:
    app = create_app({"SETTINGS": settings})
    app.extensions["mlsys_ui_sessions"] = SessionStore(
        client, seconds=ttl, per_principal=settings.ui_sessions_per_principal
    )
    opened = 0
    for _ in range(count):
        web = app.test_client()  # a new browser each time: its own CSRF cookie
        web.set_cookie(CSRF_COOKIE, "c" * 43, path="/ui")
        answer = web.post("/ui/signin", data={"token": TOKEN, "csrf_token": "c" * 43})
        opened += answer.status_code == 303
    return opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--signins", type=int, default=1_000)
    parser.add_argument("--ttl", type=int, default=30)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # one access-log line per sign-in would drown the figures
    with temp_home() as home, redis_server(home / "redis") as redis_url:
        bench_env(
            home,
            redis_url,
            MLSYS_API_TOKENS=TOKEN,
            MLSYS_JOB_KEEP_SECONDS=str(args.ttl),
            MLSYS_SIGNIN_RATE_LIMIT=f"{args.signins * 10}/second",
        )
        settings = Settings(_env_file=None)
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        store = JobStore.from_settings(settings)
        # Warm-up: Redis' first use (script cache, Lua VM, client buffers, table sizes) costs
        # a fixed ~0.5 MiB that never comes back; the baseline is measured after it.
        empty = _memory(client)
        _show("empty Redis", empty, empty)
        _jobs(store, 10)
        _signins(settings, client, 1, args.ttl)
        time.sleep(args.ttl + 1.5)
        store.prune_indexes()
        baseline = _memory(client)
        _show("baseline (after a warm-up round)", baseline, baseline)

        started = time.perf_counter()
        _jobs(store, args.jobs)
        _show(f"after {args.jobs} jobs ended", _memory(client), baseline)
        opened = _signins(settings, client, args.signins, args.ttl)
        _show(f"after {args.signins} sign-ins ({opened} ok)", _memory(client), baseline)
        loaded = time.perf_counter() - started

        time.sleep(args.ttl + 1.5)  # rate-limit windows are 1 s here; records and sessions ttl
        _show("after the TTLs passed", _memory(client), baseline)
        pruned = store.prune_indexes()
        _show(f"after one index prune ({pruned} entries)", _memory(client), baseline)
        time.sleep(5)  # Redis shrinks its emptied hash tables in its background cron
        final = _memory(client)
        _show("5 s later", final, baseline)
        left = sorted({key.split("|")[0].rsplit(":", 1)[0] for key in client.scan_iter()})
        print(f"load took {loaded:.1f} s; keys left: {left or 'none'}")
        growth = final[0] - baseline[0]
        back = final[1] == baseline[1] and growth < 64 * 1024
        print(f"goal: back to the baseline (no key left, < 64 KiB) -> {'ok' if back else 'missed'}")


if __name__ == "__main__":
    main()
