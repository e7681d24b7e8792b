"""Request and response shapes of /schedules and of a model version's monitoring history
(documented in /openapi.json; the dashboard reads the same JSON)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mlsys.jobs.schedules import OUTCOMES
from web.evaluation_schemas import EvaluateRequest
from web.schemas import PredictRequest, Strict

_CRON = (
    'Five-field cron expression "minute hour day-of-month month day-of-week" in `timezone`, '
    'e.g. "0 6 * * mon-fri". Exactly one of cron and interval_seconds.'
)
_INTERVAL = "Run every this many seconds (at least MLSYS_SCHEDULE_MIN_INTERVAL)."
_TZ = "IANA time zone the cron expression is read in (daylight saving time included)."
_PREDICT = (
    "The job each run submits: the fields of POST /predict (no idempotency_key). "
    "model_version may name an alias (champion): each run resolves it again."
)

_EVALUATE = (
    "An evaluation each run submits: the fields of POST /evaluations (no idempotency_key). "
    "Leave since and until out: each run evaluates the `days` before it, less label_delay."
)


class ScheduleCreate(Strict):
    """A predict (or evaluate) job to run on a cron expression or at an interval: exactly one
    of `predict` and `evaluate`."""

    name: str | None = Field(None, max_length=200, description="A label for people.")
    cron: str | None = Field(None, max_length=200, description=_CRON)
    interval_seconds: float | None = Field(None, gt=0, le=366 * 86400, description=_INTERVAL)
    timezone: str = Field("UTC", max_length=64, description=_TZ)
    paused: bool = Field(False, description="Create it paused (no runs until resumed).")
    predict: PredictRequest | None = Field(None, description=_PREDICT)
    evaluate: EvaluateRequest | None = Field(None, description=_EVALUATE)


class ScheduleUpdate(Strict):
    """Pause or resume, or change when it runs; fields left out stay as they are."""

    paused: bool | None = Field(None, description="true pauses, false resumes.")
    name: str | None = Field(None, max_length=200)
    cron: str | None = Field(None, max_length=200, description=_CRON)
    interval_seconds: float | None = Field(None, gt=0, le=366 * 86400, description=_INTERVAL)
    timezone: str | None = Field(None, max_length=64, description=_TZ)


class ScheduleRun(BaseModel):
    """One firing of a schedule."""

    at: str = Field(description="When beat fired it (UTC).")
    outcome: Literal[OUTCOMES]  # the job engine's own list of outcomes
    job_id: str | None = Field(description="The job it submitted (outcome submitted).")
    job_state: str | None = Field(None, description="That job's state now.")
    detail: str = Field(description="Why it was skipped or failed.")


class Schedule(BaseModel):
    """A schedule and, on GET /schedules/{id}, its latest runs."""

    schedule_id: str
    name: str | None
    principal: str = Field(description="Who owns it; its runs are jobs of this principal.")
    cron: str | None
    interval_seconds: float | None
    timezone: str
    paused: bool
    suspended: str | None = Field(
        None,
        description="Why it stopped on its own: its principal could no longer run it (removed, "
        "or lost a scope or dataset). Paused until an admin resumes it.",
    )
    predict: dict[str, Any] | None = Field(description="The validated predict spec.")
    evaluate: dict[str, Any] | None = Field(
        None, description="The validated evaluate spec (a schedule of evaluations)."
    )
    created_at: str
    updated_at: str
    next_run_at: str | None = Field(None, description="When beat fires it next (its zone).")
    last_runs: list[ScheduleRun] = Field(default_factory=list, description="Newest first.")


class ScheduleList(BaseModel):
    schedules: list[Schedule]


class MonitoringQuery(Strict):
    env: str = Field(description="Environment name (MLSYS_ENVIRONMENTS), e.g. dev.")
    limit: int = Field(100, ge=1, le=1000, description="At most this many jobs, the latest.")


class FeatureStats(BaseModel):
    """Drift of one feature (or __prediction__ / __probability__) in one job."""

    feature: str
    model_name: str
    model_version: int
    kind: Literal["number", "category"]
    status: Literal["ok", "warn", "alert"]
    rows: int
    null_rate: float | None
    null_rate_reference: float | None = Field(description="In the training data.")
    null_rate_change: float | None
    psi: float | None = Field(description="Population stability index vs. training.")
    unseen_rate: float | None = Field(description="Share of category values unseen in training.")
    unseen_examples: list[str]
    mean: float | None
    computed_at: str | None


class MonitoringJob(BaseModel):
    job_id: str
    computed_at: str | None
    status: Literal["ok", "warn", "alert"] = Field(description="Worst status of its features.")
    features: list[FeatureStats]


class MonitoringHistory(BaseModel):
    """Drift of a model version's inputs and predictions, job by job, oldest first."""

    env: str
    model_name: str
    model_version: str = Field(description="vN")
    jobs: list[MonitoringJob]
