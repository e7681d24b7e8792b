"""A job running while Redis is killed -9 and restarted from its AOF: the worker survives the
lost connection, gives back the unit it was running, restores the messages it held, and the
job commits exactly its input's rows (real redis-server, real Celery worker processes)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.integration.jobs_support import make_stack
from tests.models import FEATURES, ScriptedClassifier
from tests.services import celery_worker, crashable_redis, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

ROWS = 18_000


@pytest.fixture
def crash_stack(tmp_path):
    with crashable_redis(tmp_path / "redis") as server:
        # A lease outlives the test: only the give-back can run the cancelled unit again,
        # never the reaper (which waits for the lease to expire).
        stack = make_stack(tmp_path, server.url, MLSYS_RECOVERY_TIMEOUT="600")
        stack.redis = server
        yield stack
        stack.celery.close()


def test_a_job_through_a_redis_crash_commits_every_row_once(crash_stack):
    stack = crash_stack
    stack.load_table(ROWS)
    # Batches of 1,000 rows at 0.4 s: three shards of 6,000 rows, ~2.4 s each.
    stack.register(ScriptedClassifier(delay=0.4).fit(pd.DataFrame(columns=FEATURES)))
    log = stack.home / "worker-crash.log"
    with celery_worker(stack.env, stack.cwd, concurrency=2, name="crash", log=log) as worker:
        job_id = stack.submit(shards=3)

        def last_shard_mid_way() -> bool:
            # Two processes, three shards: the last one runs alone, so the other process is
            # waiting on the broker when it dies too (the case that used to kill the worker).
            job = stack.jobs.get(job_id)
            return any(s.index == 2 and s.state == "running" and s.rows_done for s in job.shards)

        wait_for(last_shard_mid_way, timeout=120, what="the last shard to be mid-way")
        stack.redis.crash_and_restart()
        final = stack.wait(job_id, timeout=120)
        assert worker.poll() is None, "the worker exited on the lost connection"
        wait_for(lambda: not stack.broker.hlen("unacked"), timeout=30, what="no orphaned message")

    assert final.state == "succeeded", final.error
    assert stack.jobs.units(job_id)["shard:2"]["attempt"] == 2
    text = log.read_text()
    assert f"broker connection back: {job_id} shard:2: attempt 2 dispatched" in text
    assert "broker connection back: restored" in text
    rows = stack.output_rows()
    mine = rows[rows["JobId"] == job_id]
    assert len(mine) == ROWS and mine["PassengerId"].is_unique, "rows lost or duplicated"
    assert set(mine["PassengerId"]) == set(range(1, ROWS + 1))
    assert final.progress.rows_done == ROWS
