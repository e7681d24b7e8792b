"""Sharded jobs on real Celery worker subprocesses over a real Redis: nothing lost, nothing
duplicated, whatever dies or is delivered twice."""

from __future__ import annotations

import pandas as pd
import pytest

from mlsys.client import MlsysClient
from mlsys.settings import get_settings
from tests.integration.jobs_support import (
    INPUT,
    OUTPUT,
    make_stack,
    rewind_to_committing,
    unit_worker,
)
from tests.models import FEATURES, ScriptedClassifier
from tests.services import celery_worker, kill_group, serve_wsgi, wait_for
from web import create_app
from worker.app import QUEUE
from worker.dispatch import send_unit
from worker.fairness import redis_keys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


TOKEN = "exactly-once-token-0123456789"  # pragma: allowlist secret


@pytest.fixture
def stack(tmp_path, redis_client, redis_url):
    """A stack whose `submit` is the real POST /predict (the app served in this process):
    validation, idempotency and the record-then-send of web/submit.py, as users reach them."""
    stack = make_stack(tmp_path, redis_url, MLSYS_API_TOKENS=TOKEN)
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    with serve_wsgi(app) as url:
        client = MlsysClient(url, TOKEN)

        def submit(model="scripted", shards=None, output=OUTPUT, source=INPUT, **extra) -> str:
            body = {"env": "dev", "input_table": str(source), "output_table": str(output)}
            body.update(model_name=model, **({"shards": shards} if shards else {}), **extra)
            return client.submit_predict(**body)["job_id"]

        stack.submit = submit
        yield stack
    stack.celery.close()


def _slow(delay: float) -> ScriptedClassifier:
    return ScriptedClassifier(delay=delay).fit(pd.DataFrame(columns=FEATURES))


def _assert_exact(rows: pd.DataFrame, expected: int, job_id: str) -> None:
    mine = rows[rows["JobId"] == job_id]
    assert len(mine) == expected, f"{len(mine)} rows for {expected} inputs"
    assert mine["PassengerId"].is_unique, "duplicated rows"
    assert set(mine["PassengerId"]) == set(range(1, expected + 1)), "lost rows"


def test_sharded_job_equals_unsharded_row_for_row(stack):
    stack.load_table(12_000)
    stack.register()
    with celery_worker(stack.env, stack.cwd, concurrency=2):
        one = stack.submit(shards=1, output=OUTPUT.with_table("one"))
        four = stack.submit(shards=4, output=OUTPUT.with_table("four"))
        first, second = stack.wait(one), stack.wait(four)
    assert (first.state, second.state) == ("succeeded", "succeeded")
    assert len(second.shards) == 4 and all(s.state == "done" for s in second.shards)
    assert second.progress.model_dump() == {
        "rows_done": 12_000,
        "rows_total": 12_000,
        "percent": 100.0,
    }
    columns = ["PassengerId", "Survived", "PredictionProbability", "ModelName", "ModelVersion"]
    a = stack.output_rows(OUTPUT.with_table("one")).sort_values("PassengerId")[columns]
    b = stack.output_rows(OUTPUT.with_table("four")).sort_values("PassengerId")[columns]
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    _assert_exact(stack.output_rows(OUTPUT.with_table("four")), 12_000, four)
    # The commit drops staging right after it records success.
    wait_for(lambda: stack.staging(four) == [], timeout=30, what="staging cleanup")


@pytest.mark.slow
def test_kill_9_of_a_worker_mid_shard_loses_and_duplicates_nothing(stack):
    stack.load_table(24_000)
    stack.register(_slow(0.25))  # batches of 1,000 rows, shards of ~6,000: ~1.5 s a shard
    with (
        celery_worker(stack.env, stack.cwd, name="victim") as victim,
        celery_worker(stack.env, stack.cwd, name="survivor"),
    ):
        job_id = stack.submit(shards=4)
        seen: list[int] = []  # rows_done as a client polling the job sees it

        def sample():
            job = stack.jobs.get(job_id)
            seen.append(job.progress.rows_done)
            return job

        def victim_mid_shard():
            job = sample()
            return any(
                # Two batches in, several to go: the redo restarts below what was shown, so
                # progress that counted only the current attempt would go backwards.
                s.state == "running"
                and 2_000 <= s.rows_done <= 4_000
                and (unit_worker(stack, job_id, f"shard:{s.index}") or "").startswith("victim")
                for s in job.shards
            )

        wait_for(victim_mid_shard, timeout=60, what="the victim to be mid-shard")
        at_kill = len(seen)
        kill_group(victim)
        # Keep sampling through the lost lease, the redo from row 0 and the commit.
        final = wait_for(
            lambda: (job := sample()).state.terminal and job, timeout=120, what="the job to end"
        )

    assert final.state == "succeeded", final.error
    assert any(s.attempt > 1 for s in final.shards), "the killed shard was never redone"
    assert len(set(seen[:at_kill])) >= 2, "progress did not move before the kill"
    assert len(set(seen[at_kill:])) >= 2, "progress did not move after the kill"
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    assert seen[-1] == final.progress.rows_total == 24_000
    _assert_exact(stack.output_rows(), 24_000, job_id)
    wait_for(lambda: stack.staging(job_id) == [], timeout=30, what="staging cleanup")


def test_every_unit_delivered_twice_commits_once(stack):
    stack.load_table(6_000)
    stack.register()
    with celery_worker(stack.env, stack.cwd, concurrency=2):
        job_id = stack.submit(shards=3)
        send_unit(job_id, "plan", 1, app=stack.celery)  # a duplicate right away
        assert stack.wait(job_id).state == "succeeded"
        for unit in ("plan", "shard:0", "shard:1", "shard:2", "commit"):
            send_unit(job_id, unit, 1, app=stack.celery)  # e.g. a visibility-timeout redelivery
        send_unit(job_id, "commit", 2, app=stack.celery)
        broker = stack.broker
        wait_for(lambda: _waiting(broker) == 0 and stack.settled(job_id), what="drain")
        wait_for(lambda: not broker.hlen("unacked"), timeout=30, what="acks")
    assert stack.jobs.get(job_id).state == "succeeded"
    _assert_exact(stack.output_rows(), 6_000, job_id)


def test_a_poison_row_fails_the_job_and_leaves_the_output_as_it_was(stack):
    stack.load_table(3_000)
    stack.register()
    with celery_worker(stack.env, stack.cwd, concurrency=2):
        good = stack.submit(shards=2)
        assert stack.wait(good).state == "succeeded"
        stack.load_table(3_000, special={1_700: "poison"})
        bad = stack.submit(shards=3)
        final = stack.wait(bad)
        wait_for(lambda: stack.settled(bad), what="shards to stop")
        # Each shard drops staging after it lets go of its unit: the worker must still run.
        wait_for(lambda: stack.staging(bad) == [], timeout=30, what="staging cleanup")
    assert final.state == "failed"
    # A readable reason: the estimator, its error and the row's problem.
    assert final.error.type == "ModelFailed"
    message = final.error.message
    assert "ScriptedClassifier raised ValueError" in message and "poison" in message
    rows = stack.output_rows()
    assert set(rows["JobId"]) == {good}
    _assert_exact(rows, 3_000, good)


@pytest.mark.slow
def test_a_shard_that_kills_every_worker_fails_after_the_redelivery_cap(
    tmp_path, redis_client, redis_url
):
    stack = make_stack(tmp_path, redis_url, MLSYS_MAX_ATTEMPTS="2")
    stack.load_table(2_000, special={1_500: "crash"})
    stack.register()
    with celery_worker(stack.env, stack.cwd, concurrency=1):
        job_id = stack.submit(shards=1)
        final = stack.wait(job_id, timeout=90)
    assert final.state == "failed"
    assert final.error.type == "WorkerLost"
    assert "MLSYS_MAX_ATTEMPTS=2" in final.error.message
    assert not stack.warehouse.exists(OUTPUT)


@pytest.mark.slow
def test_cancel_mid_fan_out_leaves_no_output_and_no_staging(stack):
    stack.load_table(24_000)
    stack.register(_slow(0.06))
    with celery_worker(stack.env, stack.cwd, concurrency=2):
        job_id = stack.submit(shards=4)
        wait_for(
            lambda: stack.jobs.get(job_id).progress.rows_done > 0,
            timeout=60,  # the first shard of a fresh worker process imports and loads the model
            what="shards to start",
        )
        assert stack.jobs.cancel(job_id).state == "cancelled"
        wait_for(lambda: stack.settled(job_id), timeout=30, what="shards to stop")
        wait_for(lambda: _waiting(stack.broker) == 0, timeout=30, what="queue to drain")
        wait_for(lambda: stack.staging(job_id) == [], timeout=30, what="staging cleanup")
    final = stack.jobs.get(job_id)
    assert final.state == "cancelled"
    assert not stack.warehouse.exists(OUTPUT)


def test_a_commit_that_landed_but_was_not_recorded_is_not_applied_twice(stack):
    stack.load_table(5_000)
    stack.register()
    with celery_worker(stack.env, stack.cwd, concurrency=2):
        job_id = stack.submit(shards=2)
        assert stack.wait(job_id).state == "succeeded"
        # The rows are in the table, the job is running, the commit unit lost its lease.
        rewind_to_committing(stack, job_id)
        final = stack.wait(job_id, timeout=60)  # the reaper redispatches the commit
    assert final.state == "succeeded"
    assert stack.jobs.units(job_id)["commit"]["attempt"] == 2
    _assert_exact(stack.output_rows(), 5_000, job_id)


@pytest.mark.slow
def test_a_job_whose_first_message_was_lost_still_runs(stack):
    stack.load_table(2_000)
    stack.register()
    spec_job = stack.submit(shards=1)  # a normal job, so the worker is known to be up
    # The API died after recording this job and before sending its message:
    job, _ = stack.jobs.create(stack.new_job(shards=1))
    with celery_worker(stack.env, stack.cwd, concurrency=2):
        assert stack.wait(spec_job).state == "succeeded"
        final = stack.wait(job.job_id, timeout=90)  # resent after 5 x recovery timeout
    assert final.state == "succeeded"
    assert len(stack.output_rows()) == 4_000


def _waiting(broker) -> int:
    """Messages waiting in any of the worker's queues and priorities."""
    return sum(broker.llen(key) for key in redis_keys(QUEUE, get_settings().fair_lanes))
