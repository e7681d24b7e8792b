"""kill -9 a worker mid-shard, N times, and count lost and duplicated rows (target 0 / 0).

    uv run python bench/chaos.py [--trials 10] [--rows 24000] [--shards 4]

Each trial: two workers, one sharded job over a slow model, kill -9 of the whole process group
of whichever worker is mid-shard at a random moment, then a fresh worker joins (as an
autoscaler would). MLSYS_RECOVERY_TIMEOUT is 2 s here.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import time

import pandas as pd
from _stack import celery_worker, kill_group, redis_server, temp_home, wait_for

from tests.integration.jobs_support import make_stack
from tests.models import FEATURES, ScriptedClassifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--rows", type=int, default=24_000)
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(7)
    total_lost = total_dup = 0
    with temp_home() as home, redis_server(home / "redis") as url:
        stack = make_stack(home, url)
        stack.load_table(args.rows)
        stack.register(ScriptedClassifier(delay=0.05).fit(pd.DataFrame(columns=FEATURES)))
        print(
            f"{'trial':>5} {'state':>10} {'rows':>7} {'lost':>5} {'dup':>5} {'redone':>6} "
            f"{'killed at':>9} {'recovered in':>12}"
        )
        with contextlib.ExitStack() as workers:
            procs = {
                n: workers.enter_context(celery_worker(stack.env, stack.cwd, name=n))
                for n in ("w0", "w1")
            }
            spawned = 2
            for trial in range(1, args.trials + 1):
                output = stack.warehouse_table(f"chaos_{trial}")
                job_id = stack.submit(shards=args.shards, output=output)
                wait_for(
                    lambda j=job_id: stack.jobs.get(j)["progress"]["rows_done"] > 0,
                    timeout=90,
                    interval=0.02,
                    what="shards to start",
                )
                time.sleep(rng.uniform(0.0, 0.8))
                victim = _running_worker(stack, job_id)
                killed_at = stack.jobs.get(job_id)["progress"]["percent"]
                t_kill = time.monotonic()
                if victim in procs:
                    kill_group(procs.pop(victim))
                final = stack.wait(job_id, timeout=180)
                recovered = time.monotonic() - t_kill
                rows = stack.output_rows(output)
                mine = rows[rows["JobId"] == job_id]
                lost = args.rows - mine["PassengerId"].nunique()
                dup = len(mine) - mine["PassengerId"].nunique()
                redone = sum(s["attempt"] > 1 for s in final["shards"])
                total_lost += lost
                total_dup += dup
                print(
                    f"{trial:>5} {final['state']:>10} {len(mine):>7} {lost:>5} {dup:>5} "
                    f"{redone:>6} {killed_at:>8.0f}% {recovered:>11.1f}s"
                    + ("" if victim else "   (no shard running when sampled)")
                )
                name = f"w{spawned}"
                spawned += 1
                if len(procs) < 2:
                    procs[name] = workers.enter_context(
                        celery_worker(stack.env, stack.cwd, name=name)
                    )
    print(f"total lost rows {total_lost}, duplicated rows {total_dup} (target 0 / 0)")


def _running_worker(stack, job_id: str) -> str | None:
    for name, unit in stack.jobs.units(job_id).items():
        if name.startswith("shard:") and unit["state"] == "running" and unit.get("worker"):
            return unit["worker"].split(":")[0]
    return None


if __name__ == "__main__":
    main()
