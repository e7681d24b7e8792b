"""The job engine's unit lifecycle and bookkeeping on a real Redis: claims, leases, attempts,
plans, final states, cancel outcomes and the reaper's markers."""

from __future__ import annotations

import json

import pytest

from mlsys.errors import InvalidRequest, JobConflict, JobNotFound
from mlsys.jobs import JobKind, JobState, JobStore, NewJob, Retention, keys
from mlsys.jobs.names import Phase

pytestmark = pytest.mark.integration


@pytest.fixture
def jobs(redis_client, redis_url) -> JobStore:
    return JobStore.from_url(redis_url, Retention(finished=700, live=300))


def _new(principal: str = "alice", **kwargs) -> NewJob:
    return NewJob(JobKind.PREDICT, {"env": "dev"}, principal, **kwargs)


def test_a_new_job_is_recorded_queued_with_what_submit_knew(jobs):
    job, created = jobs.create(_new(rows_total=40, prepared={"m": 1}, idempotency_key="k"))

    assert created and len(job.job_id) == 32
    assert (job.state, job.phase, job.kind, job.principal) == (
        JobState.QUEUED, Phase.QUEUED, JobKind.PREDICT, "alice"
    )  # fmt: skip
    assert job.progress.model_dump() == {"rows_done": 0, "rows_total": 40, "percent": 0.0}
    assert job.submitted_at and job.started_at is None and job.shards == []
    record = jobs.record(job.job_id)
    assert (record.prepared, record.rows_total, record.idempotency_key) == ({"m": 1}, 40, "k")
    assert jobs.units(job.job_id) == {"plan": {"state": "queued", "attempt": 1}}
    assert jobs.state(job.job_id) == JobState.QUEUED and jobs.is_live(job.job_id)
    assert jobs.active_jobs() == [job.job_id]
    assert jobs.find_by_idempotency_key("alice", "k").job_id == job.job_id
    assert jobs.record("0123456789abcdef") is None and jobs.state("nope") is None


def test_a_unit_is_claimed_once_per_attempt_and_its_lease_is_fenced(jobs):
    job_id = jobs.create(_new())[0].job_id

    assert jobs.claim(job_id, "plan", 1, 10, "w:1").status == "ok"
    assert jobs.claim(job_id, "plan", 1, 10, "w:2").status == "busy"  # a second delivery
    assert jobs.lease_alive(job_id, "plan")
    assert jobs.units(job_id)["plan"]["worker"] == "w:1"
    assert jobs.get(job_id).state == JobState.RUNNING and jobs.get(job_id).started_at
    assert jobs.renew(job_id, "plan", 1, 10) and not jobs.renew(job_id, "plan", 2, 10)
    jobs.release(job_id, "plan", 2)  # another attempt's release leaves the lease alone
    assert jobs.lease_alive(job_id, "plan")
    jobs.release(job_id, "plan", 1)
    assert not jobs.lease_alive(job_id, "plan") and not jobs.renew(job_id, "plan", 1, 10)

    jobs.requeue(job_id, "plan", 2)  # the reaper dispatches attempt 2
    assert jobs.units(job_id)["plan"]["attempt"] == 2
    assert jobs.claim(job_id, "plan", 1, 10).status == "stale"
    assert jobs.claim(job_id, "plan", 2, 10).ok
    assert jobs.mark_done(job_id, "plan", 1) == -1  # superseded
    assert jobs.mark_done(job_id, "plan", 2) == 0  # no shard is done yet
    assert jobs.claim(job_id, "plan", 2, 10).status == "done"


def test_the_first_plan_wins_and_declares_the_shards_and_the_commit(jobs):
    job_id = jobs.create(_new())[0].job_id
    jobs.claim(job_id, "plan", 1, 10)

    first = jobs.record_plan(job_id, [{"s": 0}, {"s": 1}], {"p": 1}, 20)
    second = jobs.record_plan(job_id, [{"s": 9}], {"p": 2}, 99)

    assert first == second == [{"s": 0}, {"s": 1}]
    record = jobs.record(job_id)
    assert (record.plan, record.prepared, record.rows_total, record.shards_total) == (
        [{"s": 0}, {"s": 1}], {"p": 1}, 20, 2
    )  # fmt: skip
    assert set(jobs.units(job_id)) == {"plan", "shard:0", "shard:1", "commit"}
    for unit in ("shard:0", "shard:1"):
        assert jobs.claim(job_id, unit, 1, 10, "w").ok
    assert jobs.get(job_id).phase == Phase.PREDICTING
    assert jobs.mark_done(job_id, "shard:1", 1) == 1
    assert jobs.mark_done(job_id, "shard:0", 1) == 2
    assert [s.state for s in jobs.get(job_id).shards] == ["done", "done"]


def _planned(jobs, shards: int) -> str:
    job_id = jobs.create(_new())[0].job_id
    jobs.claim(job_id, "plan", 1, 10)
    jobs.record_plan(job_id, [{"s": i} for i in range(shards)], {"p": 1}, 10 * shards)
    jobs.mark_done(job_id, "plan", 1)
    return job_id


@pytest.mark.parametrize("end", ["cancel", "fail"])
def test_every_end_of_a_job_ends_its_shards_with_their_times(jobs, end):
    job_id = _planned(jobs, 3)
    assert jobs.claim(job_id, "shard:0", 1, 10, "w").ok
    assert jobs.claim(job_id, "shard:1", 1, 10, "w").ok
    assert jobs.mark_done(job_id, "shard:0", 1) == 1

    if end == "cancel":
        jobs.cancel(job_id)
    else:
        jobs.fail(job_id, ValueError("bad row"))

    ended = "cancelled" if end == "cancel" else "failed"
    done, running, queued = jobs.get(job_id).shards
    assert (done.state, running.state, queued.state) == ("done", ended, ended)
    assert done.started_at <= done.finished_at <= running.finished_at
    assert running.started_at and running.finished_at == jobs.get(job_id).finished_at
    assert queued.started_at is None and queued.finished_at is None  # it never ran
    # A worker that finishes the ended shard afterwards changes nothing.
    assert jobs.mark_done(job_id, "shard:1", 1) == -1
    jobs.requeue(job_id, "shard:2", 2)
    assert [s.state for s in jobs.get(job_id).shards] == ["done", ended, ended]


def test_the_first_final_state_wins_and_keeps_its_reason(jobs):
    job_id = jobs.create(_new())[0].job_id

    assert jobs.fail(job_id, ValueError("bad row"))
    assert not jobs.succeed(job_id, {"rows_written": 1})
    assert not jobs.fail(job_id, "later")

    job = jobs.get(job_id)
    assert job.state == JobState.FAILED and job.finished_at
    assert job.error.model_dump() == {"type": "ValueError", "message": "bad row"}
    assert job.result is None and not jobs.is_live(job_id)
    other = jobs.create(_new())[0].job_id
    assert jobs.fail(other, "text only")
    assert jobs.get(other).error.model_dump() == {"type": "Error", "message": "text only"}
    third = jobs.create(_new())[0].job_id
    assert jobs.fail(third, "typed", error_type="WorkerLost")
    assert jobs.get(third).error.type == "WorkerLost"


def test_commit_marks_and_cancel_outcomes(jobs):
    job_id = jobs.create(_new())[0].job_id
    with pytest.raises(JobNotFound, match="No job 'nope'") as missing:
        jobs.cancel("nope")
    assert missing.value.hint == "List your jobs with GET /jobs."
    cancelled = jobs.cancel(job_id)
    assert cancelled.state == JobState.CANCELLED and cancelled.finished_at
    with pytest.raises(JobConflict) as again:
        jobs.cancel(job_id)
    assert again.value.message == f"Job {job_id} is already cancelled."
    assert again.value.hint == "Only live jobs can be cancelled."
    assert not jobs.begin_commit(job_id)  # a cancelled job never commits

    landed = jobs.create(_new())[0].job_id
    assert not jobs.begin_commit(landed)  # queued: no worker has run it
    assert jobs.claim(landed, "plan", 1, 10).ok
    assert jobs.begin_commit(landed)
    assert jobs.get(landed).phase == Phase.COMMITTING
    jobs.mark_committed(landed, 12)
    assert jobs.record(landed).rows_written == 12 and jobs.get(landed).phase == Phase.COMMITTED
    with pytest.raises(JobConflict) as late:
        jobs.cancel(landed)
    assert late.value.message == (
        f"Job {landed} is already committing its output; it can no longer be cancelled."
    )
    assert late.value.hint == "Wait for it to finish."


def test_delete_forgets_the_record_its_indexes_and_its_key(jobs, redis_client):
    job_id = jobs.create(_new(idempotency_key="gone"))[0].job_id

    indexes = keys.all_indexes("alice", JobKind.PREDICT, JobState.QUEUED)
    assert all(redis_client.zscore(index, job_id) for index in indexes)

    jobs.delete(job_id)
    jobs.delete(job_id)  # twice is fine

    assert not any(redis_client.zscore(index, job_id) for index in indexes)

    assert jobs.get(job_id) is None and jobs.page(owner="alice").jobs == []
    assert jobs.find_by_idempotency_key("alice", "gone") is None
    with pytest.raises(JobNotFound):
        jobs.require(job_id)


def test_the_reapers_markers(jobs, redis_client):
    assert jobs.lead(10) and not jobs.lead(10)
    assert jobs.once("resend", "j1", 10) and not jobs.once("resend", "j1", 10)
    assert jobs.once("resend", "j2", 10) and jobs.once("stalled-commit", "j1", 10)
    # Every marker expires on its own: a dead reaper's lock or note never sticks.
    for key in ("mlsys:reaper-lock", "mlsys:seen:resend:j1", "mlsys:seen:stalled-commit:j1"):
        assert 0 < redis_client.pttl(key) <= 10_000, key
    first = jobs.first_seen("stalled", "j1", 10)
    assert jobs.first_seen("stalled", "j1", 10) == first
    assert 0 < redis_client.pttl("mlsys:seen:stalled:j1") <= 10_000
    assert jobs.first_seen("stalled", "j2", 10) >= first  # its own marker
    jobs.forget_seen("stalled", "j1")
    assert not redis_client.exists("mlsys:seen:stalled:j1")
    assert redis_client.exists("mlsys:seen:stalled:j2")
    assert jobs.first_seen("stalled", "j1", 10) >= first
    job_id = jobs.create(_new())[0].job_id
    jobs.forget_inactive(job_id)
    assert jobs.active_jobs() == []


def test_submit_sends_the_first_unit_once_and_a_replay_sends_nothing(jobs):
    sent: list[tuple] = []

    job, created = jobs.submit(_new(idempotency_key="r"), lambda *unit: sent.append(unit))
    again, replayed = jobs.submit(_new(idempotency_key="r"), lambda *unit: sent.append(unit))

    assert (created, replayed) == (True, False) and again.job_id == job.job_id
    assert sent == [(job.job_id, "plan", 1)]
    other_kind = NewJob(JobKind.REGISTRY_SYNC, {"env": "dev"}, "alice", idempotency_key="r")
    with pytest.raises(JobConflict, match="different request") as refused:
        jobs.submit(other_kind, lambda *unit: sent.append(unit))
    assert refused.value.hint == "Use a new key for a new request." and len(sent) == 1


@pytest.mark.parametrize("token", ["abc.j1", "12.", ".j1", "1" * 199 + ".j1", "-5.j1"])
def test_a_page_token_not_handed_out_is_refused(jobs, token):
    with pytest.raises(InvalidRequest, match="Invalid page token"):
        jobs.page(page_token=token)


def test_a_full_page_says_where_the_next_one_starts(jobs):
    ids = [jobs.create(_new())[0].job_id for _ in range(3)]

    page = jobs.page(limit=2)
    rest = jobs.page(limit=2, page_token=page.next_page_token)

    assert [j.job_id for j in page.jobs] == ids[:0:-1]
    score, _, last = page.next_page_token.partition(".")
    assert score.isdigit() and last == ids[1]
    assert [j.job_id for j in rest.jobs] == [ids[0]] and rest.next_page_token is None
    assert jobs.page(limit=3).next_page_token is None
    assert json.loads(jobs.page(limit=1).model_dump_json())["jobs"][0]["job_id"] == ids[2]


def test_a_record_is_stamped_in_utc_and_lists_under_its_kind(jobs):
    job_id = jobs.create(_new())[0].job_id
    other = jobs.create(NewJob(JobKind.REGISTRY_SYNC, {"env": "dev"}, "alice"))[0].job_id
    assert jobs.succeed(job_id, {"rows_written": 3})

    job = jobs.get(job_id)
    assert job.submitted_at.endswith("+00:00") and job.finished_at.endswith("+00:00")
    assert job.result == {"rows_written": 3}
    assert jobs.record(job_id).idempotency_key is None
    assert [j.job_id for j in jobs.page(kind=JobKind.PREDICT).jobs] == [job_id]
    assert [j.job_id for j in jobs.page(kind=JobKind.REGISTRY_SYNC).jobs] == [other]
    by_all = jobs.page(owner="alice", kind=JobKind.PREDICT, state=JobState.SUCCEEDED)
    assert [j.job_id for j in by_all.jobs] == [job_id]


def test_page_tokens_are_refused_past_200_characters_with_a_hint(jobs):
    assert jobs.page(page_token="1." + "a" * 198).jobs == []  # 200: a cursor before every job
    with pytest.raises(InvalidRequest) as caught:
        jobs.page(page_token="1." + "a" * 199)
    assert caught.value.hint == "Pass the next_page_token of the previous page."


def test_a_page_keeps_to_a_time_range_and_a_predicate_and_ids_are_found_by_prefix(jobs):
    from datetime import UTC, datetime, timedelta

    ids = [jobs.create(_new(principal="carol"))[0].job_id for _ in range(6)]
    before = datetime.now(UTC) - timedelta(hours=1)
    old = ids[0]
    for index in keys.all_indexes("carol", JobKind.PREDICT, JobState.QUEUED):
        jobs._redis.zadd(index, {old: int((before - timedelta(days=1)).timestamp() * 1e6)})

    recent = jobs.page("carol", since=before, limit=3)
    assert [j.job_id for j in recent.jobs] == ids[:0:-1][:3] and recent.next_page_token
    rest = jobs.page("carol", since=before, limit=3, page_token=recent.next_page_token)
    assert [j.job_id for j in rest.jobs] == ids[2:0:-1] and rest.next_page_token is None
    assert [j.job_id for j in jobs.page("carol", until=before).jobs] == [old]
    wanted = set(ids[1::2])
    picked = jobs.page("carol", limit=2, where=lambda job: job.job_id in wanted)
    assert [j.job_id for j in picked.jobs] == sorted(wanted, key=ids.index, reverse=True)[:2]

    assert [j.job_id for j in jobs.find_prefix(ids[3][:10], owner="carol")] == [ids[3]]
    assert jobs.find_prefix(ids[3][:10], owner="dave") == []
    assert jobs.find_prefix("not-hex") == [] and jobs.find_prefix("") == []


def test_a_rare_filter_reads_a_bounded_part_of_the_index_per_page(jobs):
    ids = [jobs.create(_new(principal="erin"))[0].job_id for _ in range(12)]
    oldest = ids[0]  # the one job the filter wants, behind eleven it reads past
    reads: list[int] = []
    views = jobs._views
    jobs._views = lambda members: reads.append(len(members)) or views(members)

    token, seen, pages = None, [], 0
    while True:
        page = jobs.page(
            "erin", limit=5, page_token=token, where=lambda j: j.job_id == oldest, scan_budget=4
        )
        pages += 1
        seen += [j.job_id for j in page.jobs]
        token = page.next_page_token
        if token is None:
            break
        assert pages < 20, "the pages never end"

    assert seen == [oldest]
    assert pages > 1  # the first pages came back short, with a token to go on
    assert sum(reads) == len(ids)  # each record read once over all pages
    # Without a filter a page is full, and no budget applies.
    assert len(jobs.page("erin", limit=5, scan_budget=1).jobs) == 5
