"""Throughput with 1..N workers on a CPU-bound model, and end-to-end vs raw model time.

    uv run python bench/scaling.py [--rows 4000000] [--workers 1 2] [--shards-per-worker 1]

Targets on this 2-core machine: 2 workers >= 1.7x the throughput of 1; end-to-end / raw model
time <= 1.2 with one worker. Pass larger --workers on a larger machine.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
from _stack import celery_worker, redis_server, temp_home, wait_for

from mlsys import datasets
from mlsys.cli.demo import CATEGORICAL, NUMERIC, titanic_pipeline
from mlsys.ids import TableId
from tests.integration.jobs_support import INPUT, make_stack

WARMUP = TableId(INPUT.project, INPUT.dataset, "warmup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shards-per-worker", type=int, default=1)
    args = parser.parse_args()
    with temp_home() as home, redis_server(home / "redis") as url:
        stack = make_stack(home, url, MLSYS_BATCH_ROWS="100000", MLSYS_RECOVERY_TIMEOUT="60")
        datasets.write_titanic(stack.warehouse, INPUT, args.rows)
        train = datasets.titanic(20_000, seed=1)
        model = titanic_pipeline(n_jobs=1).fit(train[NUMERIC + CATEGORICAL], train["Survived"])
        stack.register(model, name="forest", version=1)
        datasets.write_titanic(stack.warehouse, WARMUP, 8_000 * max(args.workers))

        features = stack.warehouse.read_table(INPUT, NUMERIC + CATEGORICAL).to_pandas()
        started = time.perf_counter()
        for offset in range(0, len(features), 100_000):
            model.predict_proba(features.iloc[offset : offset + 100_000])
        raw = time.perf_counter() - started
        del features
        print(
            f"rows {args.rows:,}; raw predict_proba in one process: {raw:.1f}s "
            f"({args.rows / raw:,.0f} rows/s)"
        )
        print(
            f"{'workers':>7} {'shards':>6} {'seconds':>8} {'rows/s':>10} {'speedup':>7} "
            f"{'e2e/raw':>7}"
        )
        base = None
        for count in args.workers:
            with contextlib.ExitStack() as running:
                for i in range(count):
                    running.enter_context(celery_worker(stack.env, stack.cwd, name=f"s{count}{i}"))
                _wait_ready(stack, count)
                # Warm every pool process (imports, model load and cache), as long-lived workers
                # are; the cold start is a one-off per process, not a cost of each job.
                warm = stack.submit(
                    model="forest",
                    shards=count,
                    source=WARMUP,
                    output=TableId(INPUT.project, INPUT.dataset, f"warm_{count}"),
                )
                stack.wait(warm, timeout=600)
                output = TableId(INPUT.project, INPUT.dataset, f"scaling_{count}")
                t0 = time.perf_counter()
                job_id = stack.submit(
                    model="forest", shards=count * args.shards_per_worker, output=output
                )
                final = stack.wait(job_id, timeout=3600)
                seconds = time.perf_counter() - t0
            assert final["state"] == "succeeded", final["error"]
            rate = args.rows / seconds
            base = base or rate
            print(
                f"{count:>7} {len(final['shards']):>6} {seconds:>8.1f} {rate:>10,.0f} "
                f"{rate / base:>6.2f}x {seconds * count / raw:>7.2f}"
            )
    print("e2e/raw is wall time x workers / raw single-process time (1.0 = no overhead).")


def _wait_ready(stack, count: int) -> None:
    def replies():
        answers = stack.celery.control.ping(timeout=0.5) or []
        return len(answers) >= count

    wait_for(replies, timeout=60, interval=0.2, what=f"{count} workers")
    np.random.default_rng(0)  # keep numpy imported before timing


if __name__ == "__main__":
    main()
