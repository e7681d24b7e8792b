"""What the job engine hands out: the public view of a job (the API's response bodies, and the
source of their OpenAPI schemas) and the typed record the workers run from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from mlsys.jobs.names import JobKind, JobState, Phase, shard_index, spent_attempts


class Progress(BaseModel):
    rows_done: int = Field(description="Rows predicted so far; never decreases.")
    rows_total: int | None = Field(description="Rows of the input, once known.")
    percent: float


class ShardView(BaseModel):
    index: int
    state: Literal["queued", "running", "done", "cancelled", "failed"] = Field(
        description="cancelled or failed: the job ended before this shard was done."
    )
    attempt: int = Field(
        description="1 for the first run; more when a worker was lost (a unit a stopping "
        "worker gave back does not count)."
    )
    worker: str | None = Field(description="host:pid of the worker that ran it last.")
    rows_done: int
    started_at: str | None = Field(None, description="When its last attempt started.")
    finished_at: str | None = Field(None, description="When it was done, or the job ended.")


class JobError(BaseModel):
    type: str
    message: str


class Job(BaseModel):
    """A job as recorded by mlsys (not Celery): state, progress, parameters and outcome."""

    job_id: str
    kind: JobKind
    state: JobState
    phase: Phase
    principal: str = Field(description="Who submitted it (a principal's name, never a token).")
    progress: Progress
    params: dict[str, Any]
    result: dict[str, Any] | None = Field(
        description="A predict job's: rows_written, output_table, model, shards, seconds, and "
        "monitoring: {status: ok|warn|alert|unavailable, has_reference, features, warn, alert, "
        "rows, worst: [{feature, status, psi, null_rate_change, unseen_rate, reasons}]} "
        "(per-feature detail: GET /models/{name}/versions/{v}/monitoring)."
    )
    error: JobError | None
    submitted_at: str | None
    started_at: str | None
    finished_at: str | None
    shards: list[ShardView]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class JobPage(BaseModel):
    """One page of jobs, most recent first."""

    jobs: list[Job]
    next_page_token: str | None = Field(
        description="Pass as `page_token` for the next page; null on the last page."
    )


@dataclass(frozen=True)
class NewJob:
    """A job to record: what a submitter knows before any worker runs."""

    kind: JobKind
    params: dict[str, Any]
    principal: str
    rows_total: int | None = None
    idempotency_key: str | None = None
    #: The predict job's resolved, pinned model and schema: `PreparedPredict.to_json()`. The
    #: job engine stores it as it is and never reads it (it imports no pipeline); the worker
    #: reads it back typed, and checked, with `PreparedPredict.from_json`.
    prepared: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobRecord:
    """The stored record, typed: what a worker reads to run a unit."""

    job_id: str
    kind: JobKind
    state: JobState
    phase: Phase
    principal: str
    params: dict[str, Any]
    submitted_at: str
    started_at: str | None = None
    rows_total: int | None = None
    prepared: dict[str, Any] | None = None  # as recorded (NewJob.prepared)
    plan: list[Any] | None = None
    shards_total: int | None = None
    rows_written: int | None = None  # set once the commit landed (phase committed)
    idempotency_key: str | None = None

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> JobRecord:
        return cls(
            job_id=data["job_id"],
            kind=JobKind(data["kind"]),
            state=JobState(data["state"]),
            phase=Phase(data.get("phase") or data["state"]),
            principal=data.get("principal") or "",
            params=json.loads(data.get("params") or "{}"),
            submitted_at=data["submitted_at"],
            started_at=data.get("started_at") or None,
            rows_total=_int(data.get("rows_total")),
            prepared=json.loads(data["prepared"]) if data.get("prepared") else None,
            plan=json.loads(data["plan"]) if data.get("plan") else None,
            shards_total=_int(data.get("shards_total")),
            rows_written=_int(data.get("rows_written")),
            idempotency_key=data.get("idempotency_key") or None,
        )


def _int(value: str | None) -> int | None:
    return int(value) if value else None


def job_view(data: dict[str, str], units: dict[str, str], progress: dict[str, str]) -> Job:
    """The public view of a stored job, its units and its per-shard progress."""
    rows_total = _int(data.get("rows_total"))
    shards = []
    for name, raw in units.items():
        index = shard_index(name)
        if index is None:
            continue
        unit = json.loads(raw)
        shards.append(
            ShardView(
                index=index,
                state=unit["state"],
                attempt=spent_attempts(unit),
                worker=unit.get("worker") or None,
                rows_done=int(progress.get(str(index), 0)),
                started_at=unit.get("started_at") or None,
                finished_at=unit.get("finished_at") or None,
            )
        )
    shards.sort(key=lambda s: s.index)
    rows_done = sum(int(v) for v in progress.values())
    if rows_total is not None:
        # Progress is the per-shard maximum over attempts, so it never goes backwards; a
        # finished job has done every row.
        rows_done = (
            rows_total if data["state"] == JobState.SUCCEEDED else min(rows_done, rows_total)
        )
    percent = round(100.0 * rows_done / rows_total, 1) if rows_total else 0.0
    return Job(
        job_id=data["job_id"],
        kind=JobKind(data["kind"]),
        state=JobState(data["state"]),
        phase=Phase(data.get("phase") or data["state"]),
        principal=data.get("principal") or "",
        progress=Progress(rows_done=rows_done, rows_total=rows_total, percent=percent),
        params=json.loads(data.get("params") or "{}"),
        result=json.loads(data["result"]) if data.get("result") else None,
        error=JobError(**json.loads(data["error"])) if data.get("error") else None,
        submitted_at=data.get("submitted_at"),
        started_at=data.get("started_at") or None,
        finished_at=data.get("finished_at") or None,
        shards=shards,
    )
