"""The job engine's typed views of a stored job: what GET /jobs/{id} shows and what a worker
reads, built from the raw Redis hashes."""

from __future__ import annotations

import json

import pytest

from mlsys.jobs.model import JobRecord, job_view
from mlsys.jobs.names import JobKind, JobState, Phase

pytestmark = pytest.mark.unit

RECORD = {
    "job_id": "j1",
    "kind": "predict",
    "state": "running",
    "phase": "predicting",
    "principal": "alice",
    "params": json.dumps({"env": "dev", "shards": 2}),
    "submitted_at": "2026-11-30T10:00:00+00:00",
    "started_at": "2026-11-30T10:00:01+00:00",
    "rows_total": "1000",
}
UNITS = {
    "plan": json.dumps({"state": "done", "attempt": 1, "worker": "w:1"}),
    "shard:1": json.dumps(
        {"state": "running", "attempt": 2, "worker": "w:2", "started_at": "2026-11-30T10:00:05"}
    ),
    "shard:0": json.dumps({"state": "done", "attempt": 1, "worker": ""}),
    "commit": json.dumps({"state": "queued", "attempt": 1}),
}


def test_a_running_job_shows_its_shards_in_order_and_its_progress():
    job = job_view(RECORD, UNITS, {"0": "300", "1": "200"}).to_json()
    assert type(job["kind"]) is str and type(job["state"]) is str  # JSON, not enums

    assert job == {
        "job_id": "j1",
        "kind": "predict",
        "state": "running",
        "phase": "predicting",
        "principal": "alice",
        "progress": {"rows_done": 500, "rows_total": 1000, "percent": 50.0},
        "params": {"env": "dev", "shards": 2},
        "result": None,
        "error": None,
        "submitted_at": "2026-11-30T10:00:00+00:00",
        "started_at": "2026-11-30T10:00:01+00:00",
        "finished_at": None,
        "shards": [
            {"index": 0, "state": "done", "attempt": 1, "worker": None, "rows_done": 300}
            | {"started_at": None, "finished_at": None},
            {"index": 1, "state": "running", "attempt": 2, "worker": "w:2", "rows_done": 200}
            | {"started_at": "2026-11-30T10:00:05", "finished_at": None},
        ],
    }


def test_a_shard_that_has_not_reported_shows_no_rows():
    job = job_view(RECORD, UNITS, {"1": "200"})

    assert [(s.index, s.rows_done) for s in job.shards] == [(0, 0), (1, 200)]
    assert job.progress.rows_done == 200


@pytest.mark.parametrize(
    ("state", "progress", "done", "percent"),
    [
        ("running", {"0": "999", "1": "999"}, 1000, 100.0),  # capped at the input's rows
        ("succeeded", {"0": "10"}, 1000, 100.0),  # a finished job did every row
        ("failed", {"0": "10", "1": "5"}, 15, 1.5),
        ("running", {}, 0, 0.0),
        ("running", {"0": "1"}, 1, 0.1),
    ],
)
def test_progress_is_capped_and_complete_once_succeeded(state, progress, done, percent):
    job = job_view({**RECORD, "state": state}, UNITS, progress)

    assert (job.progress.rows_done, job.progress.percent) == (done, percent)


def test_percent_is_rounded_to_one_decimal():
    job = job_view({**RECORD, "rows_total": "3"}, UNITS, {"0": "1"})

    assert job.progress.percent == 33.3


def test_a_job_without_a_row_count_or_phase_yet():
    data = {k: v for k, v in RECORD.items() if k not in ("rows_total", "phase", "started_at")}
    job = job_view({**data, "state": "queued"}, {}, {"0": "7"})

    assert job.progress.model_dump() == {"rows_done": 7, "rows_total": None, "percent": 0.0}
    assert job.phase == Phase.QUEUED and job.started_at is None and job.shards == []


def test_an_ended_job_shows_its_result_or_error():
    ended = {
        **RECORD,
        "state": "failed",
        "finished_at": "2026-11-30T10:01:00+00:00",
        "error": json.dumps({"type": "ModelFailed", "message": "boom"}),
        "result": json.dumps({"rows_written": 3}),
    }
    job = job_view(ended, UNITS, {})

    assert job.error.model_dump() == {"type": "ModelFailed", "message": "boom"}
    assert job.result == {"rows_written": 3}
    assert job.finished_at == "2026-11-30T10:01:00+00:00"
    assert job_view({**RECORD, "principal": ""}, {}, {}).principal == ""


def test_the_record_a_worker_reads_is_typed():
    stored = {
        **RECORD,
        "prepared": json.dumps({"model": {"model_version": 3}}),
        "plan": json.dumps([{"stream": "s/0"}]),
        "shards_total": "1",
        "rows_written": "1000",
        "idempotency_key": "k-1",
    }
    record = JobRecord.from_hash(stored)

    assert record == JobRecord(
        job_id="j1",
        kind=JobKind.PREDICT,
        state=JobState.RUNNING,
        phase=Phase.PREDICTING,
        principal="alice",
        params={"env": "dev", "shards": 2},
        submitted_at="2026-11-30T10:00:00+00:00",
        started_at="2026-11-30T10:00:01+00:00",
        rows_total=1000,
        prepared={"model": {"model_version": 3}},
        plan=[{"stream": "s/0"}],
        shards_total=1,
        rows_written=1000,
        idempotency_key="k-1",
    )


def test_a_fresh_record_has_only_what_submit_wrote():
    fresh = {
        "job_id": "j2",
        "kind": "registry_sync",
        "state": "queued",
        "submitted_at": "2026-11-30T10:00:00+00:00",
        "params": "",
        "rows_total": "",
        "idempotency_key": "",
        "started_at": "",
    }
    record = JobRecord.from_hash(fresh)

    assert record == JobRecord(
        job_id="j2",
        kind=JobKind.REGISTRY_SYNC,
        state=JobState.QUEUED,
        phase=Phase.QUEUED,
        principal="",
        params={},
        submitted_at="2026-11-30T10:00:00+00:00",
    )
