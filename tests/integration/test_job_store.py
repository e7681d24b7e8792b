"""The job engine's API on a real Redis: waiting, paging, retention, progress, ownership."""

from __future__ import annotations

import logging
import re
import threading
import time
from types import SimpleNamespace

import pytest

from mlsys.errors import BackendUnavailable, InvalidRequest, JobConflict, JobNotFound
from mlsys.jobs import JobKind, JobState, JobStore, NewJob, Retention

pytestmark = pytest.mark.integration


@pytest.fixture
def jobs(redis_client, redis_url) -> JobStore:
    return JobStore.from_url(redis_url, Retention(finished=700, live=300))


def _new(principal: str = "alice", kind: JobKind = JobKind.PREDICT, **kwargs) -> NewJob:
    return NewJob(kind, {"env": "dev", "n": kwargs.pop("n", 0)}, principal, **kwargs)


def _ttl(redis_client, job_id: str) -> int:
    return redis_client.ttl(f"mlsys:job:{job_id}")


def test_wait_wakes_every_waiter_when_the_job_ends(jobs):
    job, _ = jobs.create(_new())
    woken: list[JobState] = []

    def waiter():
        ended = jobs.wait(job.job_id, timeout=30)
        woken.append(ended.state)

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # let them block (not asserting a duration: only that all wake)
    assert woken == []
    assert jobs.succeed(job.job_id, {"rows_written": 1})
    for thread in threads:
        thread.join(10)

    assert woken == [JobState.SUCCEEDED] * 3
    # A later waiter returns at once, and the signal is still there for the next.
    assert jobs.wait(job.job_id, timeout=30).state == JobState.SUCCEEDED


def test_wait_times_out_with_the_live_job_and_knows_no_unknown_job(jobs):
    job, _ = jobs.create(_new())

    assert jobs.wait(job.job_id, timeout=0.2).state == JobState.QUEUED
    assert jobs.wait("0123456789abcdef", timeout=0.2) is None
    assert jobs.wait(job.job_id, timeout=0.2, owner="bob") is None


def test_a_wait_under_a_second_blocks_until_the_job_ends(jobs, redis_client):
    job, _ = jobs.create(_new())
    ended = []
    waiter = threading.Thread(target=lambda: ended.append(jobs.wait(job.job_id, timeout=0.9)))
    waiter.start()
    while waiter.is_alive() and not redis_client.info("clients")["blocked_clients"]:
        time.sleep(0.01)
    assert jobs.succeed(job.job_id, {"rows_written": 1})
    waiter.join(10)

    assert [j.state for j in ended] == [JobState.SUCCEEDED]


@pytest.mark.parametrize("timeout", [0, -1])
def test_a_wait_of_no_time_answers_at_once(jobs, timeout):
    job, _ = jobs.create(_new())

    # Redis would read a zero timeout as "block forever".
    assert jobs.wait(job.job_id, timeout=timeout).state == JobState.QUEUED


def test_progress_is_the_best_attempt_of_each_shard_and_never_goes_back(jobs):
    job, _ = jobs.create(_new(rows_total=100))
    jobs.record_plan(job.job_id, [{"k": 0}, {"k": 1}], {}, 100)
    jobs.set_progress(job.job_id, 0, 40)
    jobs.set_progress(job.job_id, 1, 30)
    jobs.set_progress(job.job_id, 0, 10)  # shard 0 redone from row 0 after its worker died

    view = jobs.get(job.job_id)
    assert view.progress.rows_done == 70
    assert [s.rows_done for s in view.shards] == [40, 30]
    jobs.set_progress(job.job_id, 0, 50)
    assert jobs.get(job.job_id).progress.rows_done == 80


def test_progress_stops_when_the_cancel_answered(jobs, redis_client):
    """A shard still streaming when the job is cancelled reports more rows: they were not
    landed, and the job shows what it had done when it ended."""
    job, _ = jobs.create(_new(rows_total=100))
    jobs.record_plan(job.job_id, [{"k": 0}], {}, 100)
    jobs.set_progress(job.job_id, 0, 20)
    cancelled = jobs.cancel(job.job_id)
    jobs.set_progress(job.job_id, 0, 40)  # the shard's next batch, before it saw the cancel

    assert cancelled.progress.rows_done == 20
    assert jobs.get(job.job_id).progress.rows_done == 20
    assert 300 < _ttl(redis_client, job.job_id) <= 700  # kept as an ended job, not renewed


def test_records_expire_while_live_are_renewed_and_kept_after_the_end(jobs, redis_client):
    job, _ = jobs.create(_new(idempotency_key="k1"))
    assert 0 < _ttl(redis_client, job.job_id) <= 300
    assert 0 < redis_client.ttl(f"mlsys:job:{job.job_id}:units") <= 300
    assert 0 < redis_client.ttl("mlsys:idem:5:alice:k1") <= 300

    redis_client.expire(f"mlsys:job:{job.job_id}", 5)
    assert jobs.claim(job.job_id, "plan", 1, 10, "w:1").ok  # activity renews
    assert _ttl(redis_client, job.job_id) > 200

    assert jobs.fail(job.job_id, "boom")
    for key in (f"mlsys:job:{job.job_id}", f"mlsys:job:{job.job_id}:units"):
        assert 300 < redis_client.ttl(key) <= 700
    assert 300 < redis_client.ttl("mlsys:idem:5:alice:k1") <= 700


def test_pages_through_the_index_with_a_cursor(jobs):
    ids = [jobs.create(_new(n=i))[0].job_id for i in range(7)]
    other = jobs.create(_new("bob"))[0].job_id
    jobs.succeed(ids[2], {})

    seen, cursor = [], None
    while True:
        page = jobs.page(owner="alice", limit=3, page_token=cursor)
        seen += [j.job_id for j in page.jobs]
        assert len(page.jobs) <= 3
        if page.next_page_token is None:
            break
        cursor = page.next_page_token
    assert seen == ids[::-1]
    assert [j.job_id for j in jobs.page(limit=2).jobs] == [other, ids[6]]
    assert [j.job_id for j in jobs.page(owner="alice", state=JobState.SUCCEEDED).jobs] == [ids[2]]
    queued = jobs.page(owner="alice", state=JobState.QUEUED, limit=50).jobs
    assert ids[2] not in {j.job_id for j in queued} and len(queued) == 6
    assert jobs.page(owner="bob", kind=JobKind.REGISTRY_SYNC).jobs == []
    with pytest.raises(InvalidRequest, match="page token"):
        jobs.page(page_token="not-a-token")


def test_jobs_recorded_in_the_same_microsecond_are_listed_once_each(jobs, monkeypatch):
    # Submits on several API processes can share a score; the job id orders them.
    clock = SimpleNamespace(time=lambda: 1_790_000_000.25)
    with monkeypatch.context() as frozen:
        frozen.setattr("mlsys.jobs.store.time", clock)
        # More ties than two reads of a page return, so the cursor reads past them twice.
        tied = [jobs.create(_new(n=i))[0].job_id for i in range(50)]
    later = jobs.create(_new())[0].job_id

    seen, cursor = [], None
    while True:
        page = jobs.page(owner="alice", limit=2, page_token=cursor)
        seen += [j.job_id for j in page.jobs]
        if page.next_page_token is None:
            break
        assert len(page.jobs) == 2
        cursor = page.next_page_token
    assert seen == [later, *sorted(tied, reverse=True)]


def test_an_expired_record_leaves_its_index_when_listed(jobs, redis_client):
    first, _ = jobs.create(_new())
    second, _ = jobs.create(_new())
    redis_client.delete(f"mlsys:job:{first.job_id}")

    assert [j.job_id for j in jobs.page(owner="alice").jobs] == [second.job_id]
    assert redis_client.zscore("mlsys:jobs|p=5:alice", first.job_id) is None


def test_others_jobs_are_not_found_and_idempotency_keys_are_per_principal(jobs):
    job, created = jobs.create(_new(idempotency_key="nightly"))
    again, again_created = jobs.create(_new(idempotency_key="nightly"))
    bobs, bob_created = jobs.create(_new("bob", idempotency_key="nightly"))

    assert created and not again_created and again.job_id == job.job_id
    assert bob_created and bobs.job_id != job.job_id
    assert jobs.get(job.job_id, owner="bob") is None
    with pytest.raises(JobNotFound):
        jobs.cancel(job.job_id, owner="bob")
    assert jobs.get(job.job_id).state == JobState.QUEUED
    assert jobs.cancel(job.job_id, owner="alice").state == JobState.CANCELLED


def test_submit_refuses_a_key_reused_for_another_request_and_forgets_unsent_jobs(jobs, caplog):
    def broken(*_):
        raise ConnectionError("broker down")

    jobs.submit(_new(idempotency_key="k", n=1), lambda *_: None)
    with pytest.raises(JobConflict, match="different request"):
        jobs.submit(_new(idempotency_key="k", n=2), lambda *_: None)
    with caplog.at_level(logging.ERROR, logger="mlsys.jobs.store"):
        with pytest.raises(BackendUnavailable) as caught:
            jobs.submit(_new(idempotency_key="k2"), broken)
    assert caught.value.message == "Could not queue the job: the broker is unavailable."
    assert caught.value.hint == "Retry shortly."
    assert re.search(r"could not enqueue job [0-9a-f]{32}: ConnectionError$", caplog.text, re.M)
    assert [j.params["n"] for j in jobs.page().jobs] == [1]
    assert jobs.find_by_idempotency_key("alice", "k2") is None


def test_cancel_loses_to_a_commit_that_started_first(jobs):
    job, _ = jobs.create(_new())
    assert jobs.claim(job.job_id, "plan", 1, 10).ok
    assert jobs.begin_commit(job.job_id)

    with pytest.raises(JobConflict, match="committing"):
        jobs.cancel(job.job_id)
    assert jobs.succeed(job.job_id, {})
    with pytest.raises(JobConflict, match="already succeeded"):
        jobs.cancel(job.job_id)


def test_worker_slots_add_up_the_live_announcements_only(jobs):
    assert jobs.worker_slots() == 0
    jobs.announce_worker("w1@host", 2, ttl_seconds=60)
    jobs.announce_worker("w2@host", 4, ttl_seconds=60)
    jobs.announce_worker("gone@host", 8, ttl_seconds=-1)  # its last announcement lapsed
    assert jobs.worker_slots() == 6
    jobs.announce_worker("w1@host", 2, ttl_seconds=60)  # repeating it does not count twice
    assert jobs.worker_slots() == 6


def test_worker_slots_count_every_live_worker(jobs):
    for n, slots in enumerate((1, 2, 3, 4)):
        jobs.announce_worker(f"w{n}@host", slots, ttl_seconds=60)

    assert jobs.worker_slots() == 10


def test_a_page_is_50_jobs_unless_asked_otherwise(jobs):
    ids = [jobs.create(_new(n=i))[0].job_id for i in range(51)]

    page = jobs.page()
    assert [j.job_id for j in page.jobs] == ids[:0:-1]
    assert [j.job_id for j in jobs.page(page_token=page.next_page_token).jobs] == [ids[0]]


def test_a_finished_job_is_not_waited_on_by_another_principal(jobs):
    job, _ = jobs.create(_new())
    jobs.succeed(job.job_id, {"rows_written": 3})

    assert jobs.wait(job.job_id, timeout=5, owner="bob") is None
    assert jobs.wait(job.job_id, timeout=5, owner="alice").result == {"rows_written": 3}
