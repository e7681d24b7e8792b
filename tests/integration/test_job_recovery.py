"""The reaper's pass (`reap_once`) on a real Redis, with the sending and discarding it is given
recorded: a lost unit runs again or fails its job, a lost first message and a lost commit
message are sent again, an ended job leaves the reaper's set. (The same pass against real
workers killed with -9: test_exactly_once.py.)"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from mlsys.jobs import JobKind, JobState, JobStore, NewJob, Retention, keys
from mlsys.jobs.recovery import reap_once

pytestmark = pytest.mark.integration


@pytest.fixture
def jobs(redis_client, redis_url) -> JobStore:
    return JobStore.from_url(redis_url, Retention(finished=700, live=300))


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"max_attempts": 2})


class Recorder:
    """What the reaper sent and discarded."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int]] = []
        self.discarded: list[tuple[str, str]] = []

    def send(self, job_id: str, unit: str, attempt: int) -> None:
        self.sent.append((job_id, unit, attempt))

    def discard(self, job_id: str, env: str) -> None:
        self.discarded.append((job_id, env))


def reap(jobs, settings, recorder: Recorder) -> list[str]:
    return reap_once(jobs, settings, recorder.send, recorder.discard)


def lose(jobs: JobStore, job_id: str, unit: str, attempt: int) -> None:
    """Claim `unit` with a lease of a millisecond, and wait until it lapsed: its worker died."""
    assert jobs.claim(job_id, unit, attempt, 0.001, "w:1").ok
    while jobs.lease_alive(job_id, unit):
        time.sleep(0.005)


def test_a_unit_whose_worker_was_lost_runs_again(jobs, settings):
    job_id = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "alice"))[0].job_id
    lose(jobs, job_id, "plan", 1)
    recorder = Recorder()

    assert reap(jobs, settings, recorder) == [f"redispatched {job_id} plan attempt 2"]
    assert recorder.sent == [(job_id, "plan", 2)] and recorder.discarded == []
    assert jobs.units(job_id)["plan"] == {"state": "queued", "attempt": 2}
    assert jobs.state(job_id) == JobState.RUNNING


def test_a_unit_lost_max_attempts_times_fails_its_job_and_drops_its_staging(jobs, settings):
    job_id = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "alice"))[0].job_id
    lose(jobs, job_id, "plan", 2)
    recorder = Recorder()

    assert reap(jobs, settings, recorder) == [f"failed {job_id} plan"]
    job = jobs.get(job_id)
    assert job.state == JobState.FAILED and job.error.type == "WorkerLost"
    assert job.error.message == (
        "plan: its worker was lost 2 time(s); giving up (MLSYS_MAX_ATTEMPTS=2)."
    )
    assert recorder.discarded == [(job_id, "dev")] and recorder.sent == []
    assert reap(jobs, settings, recorder) == [] and jobs.active_jobs() == []


def test_a_unit_whose_worker_lives_is_left_alone(jobs, settings):
    job_id = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "alice"))[0].job_id
    assert jobs.claim(job_id, "plan", 1, 60, "w:1").ok
    recorder = Recorder()

    assert reap(jobs, settings, recorder) == []
    assert recorder.sent == [] and jobs.units(job_id)["plan"]["state"] == "running"


def test_a_job_never_picked_up_is_sent_again_once(jobs, settings, redis_client):
    job = jobs.create(NewJob(JobKind.REGISTRY_SYNC, {"env": "dev"}, "alice"))[0]
    recorder = Recorder()
    assert reap(jobs, settings, recorder) == []  # 5 recovery timeouts have not passed

    # Submitted 5 recovery timeouts ago (and a second): the period is the same length, so the
    # second pass below comes well within it however slow the machine is.
    period = 5 * settings.recovery_timeout
    submitted = datetime.fromisoformat(job.submitted_at) - timedelta(seconds=period + 1)
    redis_client.hset(keys.job(job.job_id), "submitted_at", submitted.isoformat())
    (action,) = reap(jobs, settings, recorder)

    assert action.startswith(f"resent {job.job_id} sync after ") and action.endswith("s queued")
    assert recorder.sent == [(job.job_id, "sync", 1)]
    assert reap(jobs, settings, recorder) == []  # once per period
    assert jobs.state(job.job_id) == JobState.QUEUED


def _shards_done(
    jobs: JobStore, done: int = 2, shards: int = 2, lease: float = 60, job_id: str | None = None
) -> str:
    """A planned job of `shards` shards, `done` of them done, the others running on leases of
    `lease` seconds."""
    job_id = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "alice"), job_id)[0].job_id
    assert jobs.claim(job_id, "plan", 1, 60, "w:1").ok
    jobs.record_plan(job_id, [{"k": i} for i in range(shards)], {}, 10)
    assert jobs.mark_done(job_id, "plan", 1) == 0
    for i in range(shards):
        assert jobs.claim(job_id, f"shard:{i}", 1, 60 if i < done else lease, "w:1").ok
        if i < done:
            assert jobs.mark_done(job_id, f"shard:{i}", 1) == i + 1
    return job_id


def test_a_commit_still_queued_after_every_shard_is_sent_again(jobs, settings, redis_client):
    job_id = _shards_done(jobs)
    recorder = Recorder()
    assert reap(jobs, settings, recorder) == []  # first seen now: its message may be on its way

    quick = settings.model_copy(update={"recovery_timeout": 0.001})
    time.sleep(0.01)  # more than the quick recovery timeout since it was first seen
    assert reap(jobs, quick, recorder) == [f"redispatched {job_id} commit"]
    assert recorder.sent == [(job_id, "commit", 1)]
    assert not redis_client.exists(f"mlsys:seen:commit-wait:{job_id}")


def test_a_running_commit_or_a_shard_still_running_is_left_alone(jobs, settings):
    committing = _shards_done(jobs)
    assert jobs.claim(committing, "commit", 1, 60, "w:2").ok
    _shards_done(jobs, done=1)
    recorder = Recorder()
    # A stall is noted for 10 recovery timeouts and acted on after one: reap in between.
    quick = settings.model_copy(update={"recovery_timeout": 0.05})

    assert reap(jobs, quick, recorder) == []
    time.sleep(0.1)
    assert reap(jobs, quick, recorder) == []
    assert recorder.sent == []


def test_an_ended_or_expired_job_leaves_the_reapers_set(jobs, redis_url, settings):
    done = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "alice"))[0].job_id
    assert jobs.succeed(done, {})
    fleeting = JobStore.from_url(redis_url, Retention(finished=700, live=0.2))
    expired = fleeting.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "bob"))[0].job_id
    while jobs.record(expired) is not None:
        time.sleep(0.005)
    assert jobs.active_jobs() == [expired]

    assert reap(jobs, settings, Recorder()) == []
    assert jobs.active_jobs() == []


def test_one_pass_looks_past_expired_jobs_and_units_that_are_done(jobs, redis_url, settings):
    # Job ids in the order the pass visits them: an expired job, then two with lost units.
    fleeting = JobStore.from_url(redis_url, Retention(finished=700, live=0.2))
    expired = fleeting.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "bob"), "0" * 32)[0].job_id
    sharded = _shards_done(jobs, done=1, lease=0.001, job_id="a" * 32)  # plan, shard:0 done
    planning = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "bob"), "f" * 32)[0].job_id
    lose(jobs, planning, "plan", 1)
    while jobs.record(expired) is not None or jobs.lease_alive(sharded, "shard:1"):
        time.sleep(0.005)
    recorder = Recorder()

    assert reap(jobs, settings, recorder) == [
        f"redispatched {sharded} shard:1 attempt 2",
        f"redispatched {planning} plan attempt 2",
    ]
    assert recorder.sent == [(sharded, "shard:1", 2), (planning, "plan", 2)]
    assert expired not in jobs.active_jobs()
