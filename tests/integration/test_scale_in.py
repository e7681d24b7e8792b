"""A worker stopped as Cloud Run scales in (SIGTERM, SIGKILL 10 s later) in the middle of its
shards gives them back: a second worker finishes the job with every row once, and the stop
spends no attempt. Real workers started by the image's entry point on `localhost` hosts."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.cloudrun import cloud_run_worker, scale_in
from tests.integration.jobs_support import make_stack
from tests.models import FEATURES, ScriptedClassifier
from tests.services import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROWS = 3_000
SHARDS = 2


@pytest.fixture
def stack(tmp_path, redis_client, redis_url):
    # One attempt only: a unit the reaper had to recover (its worker "lost") would fail the
    # job. A recovery timeout far beyond the grace period: only a give-back is fast enough.
    stack = make_stack(
        tmp_path,
        redis_url,
        MLSYS_MAX_ATTEMPTS="1",
        MLSYS_RECOVERY_TIMEOUT="60",
        MLSYS_BATCH_ROWS="100",
    )
    stack.load_table(ROWS)
    # 15 batches of a second each per shard: still running when the kill comes.
    stack.register(ScriptedClassifier(delay=1.0).fit(pd.DataFrame(columns=FEATURES)), "slow")
    yield stack
    stack.celery.close()


def _running_workers(stack, job_id: str) -> dict[str, str]:
    shards = {u: s for u, s in stack.jobs.units(job_id).items() if u.startswith("shard:")}
    return {u: s.get("worker", "") for u, s in shards.items() if s["state"] == "running"}


@pytest.mark.slow
def test_a_worker_stopped_mid_shard_gives_its_shards_back(stack, tmp_path):
    with cloud_run_worker(stack.env, tmp_path / "victim.log", concurrency=SHARDS) as victim:
        job_id = stack.submit(model="slow", shards=SHARDS)
        wait_for(
            lambda: (
                len(_running_workers(stack, job_id)) == SHARDS
                and stack.jobs.get(job_id).progress.rows_done > 0
            ),
            timeout=120,
            what="both shards to run on the first worker",
        )
        held = _running_workers(stack, job_id)
        with cloud_run_worker(stack.env, tmp_path / "rescuer.log", concurrency=SHARDS):
            scale_in(victim)
            final = stack.wait(job_id, timeout=180)

    assert final.state == "succeeded", final.error
    rows = stack.output_rows()
    assert len(rows) == ROWS, f"{len(rows)} rows for {ROWS} inputs"
    assert rows["PassengerId"].is_unique, "duplicated rows"
    units = stack.jobs.units(job_id)
    for unit, victim_name in held.items():
        # Run again under a new fencing number, by another worker, with no attempt spent.
        assert units[unit]["state"] == "done"
        assert units[unit]["given"] == 1, units[unit]
        assert units[unit]["worker"] != victim_name
    assert [shard.attempt for shard in final.shards] == [1] * SHARDS
    assert "giving back its units" in (tmp_path / "victim.log").read_text()
