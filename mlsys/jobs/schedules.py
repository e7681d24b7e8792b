"""Schedules: a predict (or evaluate) spec run on a cron expression (in a time zone) or at an
interval.

A schedule's record lives in Redis next to the job records; beat fires it through a redbeat
entry (worker/beat.py) and every firing becomes an ordinary job owned by the schedule's
principal, or a recorded skip when the schedule's previous job is still running. A schedule
whose principal can no longer run it (removed, or lost a scope or a dataset) is suspended at
its next firing: paused, with the reason in `suspended`, until an admin resumes it. The predict
spec is stored as the user gave it, so a model reference naming an alias (`champion`) is
resolved again at every run.

Its Redis keys are built in `mlsys.jobs.keys`. An update is one atomic read-modify-write of the
stored record (WATCH/MULTI): changes from two callers both land, and a deleted schedule stays
deleted.
"""

from __future__ import annotations

import json
import re
import uuid
import zoneinfo
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import redis

from mlsys.errors import InvalidRequest, ScheduleNotFound
from mlsys.jobs import keys

RUNS_KEPT = 50
#: What a run of a schedule did.
SUBMITTED, SKIPPED_OVERLAP, SKIPPED_PAUSED, SKIPPED_REVOKED, SKIPPED_BUDGET, FAILED = (
    "submitted",
    "skipped_overlap",
    "skipped_paused",
    "skipped_revoked",
    "skipped_budget",
    "failed",
)
OUTCOMES = (SUBMITTED, SKIPPED_OVERLAP, SKIPPED_PAUSED, SKIPPED_REVOKED, SKIPPED_BUDGET, FAILED)
#: Schedule ids read from the index per round trip when listing.
_LIST_BATCH = 500

_FIELDS = (  # name, low, high, names
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day_of_month", 1, 31, None),
    ("month_of_year", 1, 12, "jan feb mar apr may jun jul aug sep oct nov dec".split()),
    ("day_of_week", 0, 6, "sun mon tue wed thu fri sat".split()),
)
_PART = re.compile(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/([0-9]+))?")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _value(text: str, low: int, high: int, names: list[str] | None) -> int:
    if names and text in names:
        return names.index(text) + (1 if low == 1 else 0)
    if not text.isdigit():
        raise ValueError(text)
    value = int(text)
    if low == 0 and high == 6 and value == 7:  # Sunday as 7, as cron allows
        value = 0
    if not low <= value <= high:
        raise ValueError(text)
    return value


def _sunday_as_zero(text: str) -> str:
    """A day-of-week field with cron's Sunday-as-7 written as 0, the only Sunday beat's
    crontab knows (a range ending on 7 wraps round: 5-0 is Friday to Sunday)."""
    items = []
    for item in text.split(","):
        span, _, step = item.partition("/")
        span = "-".join("0" if v == "7" else v for v in span.split("-"))
        items.append(f"{span}/{step}" if step else span)
    return ",".join(items)


def check_cron(expression: str) -> dict[str, str]:
    """Split a five-field cron expression (minute hour day-of-month month day-of-week) into
    celery crontab's arguments, checking every field.

    Raises:
        InvalidRequest: not five fields, or a field out of range.
    """
    parts = expression.lower().split()
    if len(parts) != 5:
        raise InvalidRequest(
            f"Cron expression {expression!r} does not have five fields.",
            hint='Use "minute hour day-of-month month day-of-week", e.g. "0 6 * * mon-fri".',
        )
    for text, (name, low, high, names) in zip(parts, _FIELDS, strict=True):
        try:
            for item in text.split(","):
                match = _PART.fullmatch(item)
                if match is None:
                    raise ValueError(item)
                span, step = match.groups()
                if step is not None and int(step) < 1:
                    raise ValueError(item)
                if span != "*":
                    bounds = [_value(v, low, high, names) for v in span.split("-")]
                    if len(bounds) == 2 and bounds[0] > bounds[1] and name != "day_of_week":
                        raise ValueError(item)
        except ValueError:
            raise InvalidRequest(
                f"Cron field {name} {text!r} is not valid.",
                hint=f"Use *, numbers {low}-{high}"
                + (f" or names ({', '.join(names)})" if names else "")
                + ", ranges a-b, steps */n and lists a,b.",
            ) from None
    fields = dict(zip([f[0] for f in _FIELDS], parts, strict=True))
    fields["day_of_week"] = _sunday_as_zero(fields["day_of_week"])
    # Beat's own parser also refuses a day that never comes (31 February): ask it here, so the
    # schedule is refused before it is stored, not when beat is handed it.
    from celery.schedules import crontab

    try:
        crontab(**fields)
    except ValueError as error:
        never = "never occurs" in str(error)
        raise InvalidRequest(
            f"Cron expression {expression!r} {'never runs' if never else 'is not valid'}: {error}",
            hint="Pick a day of the month that the months named have."
            if never
            else "Use *, numbers, ranges a-b, steps */n or a-b/n and lists a,b.",
        ) from None
    return fields


def check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(
            f"Unknown time zone {name!r}.",
            hint="Use an IANA name such as UTC, Europe/Paris or America/New_York.",
        ) from None
    return name


@dataclass(frozen=True)
class Schedule:
    """A schedule as stored and shown."""

    schedule_id: str
    principal: str
    predict: dict[str, Any] | None  # the predict spec's JSON (PredictSpec.to_json)
    cron: str | None = None
    interval_seconds: float | None = None
    timezone: str = "UTC"
    name: str | None = None
    paused: bool = False
    #: Why it stopped firing on its own (its principal can no longer run it); None otherwise.
    suspended: str | None = None
    #: An evaluation schedule's spec (EvaluateSpec.to_json) in place of `predict`.
    evaluate: dict[str, Any] | None = None
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)

    @property
    def kind(self) -> str:
        """What each run submits: `predict` or `evaluate`."""
        return "evaluate" if self.evaluate is not None else "predict"

    @property
    def entry_name(self) -> str:
        """Name of its redbeat entry."""
        return f"schedule-{self.schedule_id}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        return cls(**data)


#: The longest interval between runs (a year and a day), as the API's schema allows.
MAX_INTERVAL = 366 * 86400.0


def check_timing(
    cron: str | None, interval_seconds: float | None, timezone: str, min_interval: float
) -> None:
    """Exactly one of cron / interval, a known time zone, no interval below the minimum."""
    if (cron is None) == (interval_seconds is None):
        raise InvalidRequest(
            "A schedule needs exactly one of cron and interval_seconds.",
            hint='E.g. "cron": "0 6 * * *" with "timezone": "Europe/Paris", '
            'or "interval_seconds": 3600.',
        )
    if cron is not None:
        check_cron(cron)
    if interval_seconds is not None and interval_seconds < min_interval:
        raise InvalidRequest(
            f"interval_seconds must be at least {min_interval:g}.",
            hint="Raise it, or MLSYS_SCHEDULE_MIN_INTERVAL on the server.",
        )
    if interval_seconds is not None and not interval_seconds <= MAX_INTERVAL:  # NaN too
        raise InvalidRequest(
            f"interval_seconds must be at most {MAX_INTERVAL:g} (a year and a day).",
            hint="For rarer runs use a cron expression.",
        )
    check_timezone(timezone)


class ScheduleStore:
    """Schedule records and their run history in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def create(self, schedule: Schedule) -> Schedule:
        with self.r.pipeline() as pipe:
            pipe.hset(keys.schedule(schedule.schedule_id), "data", json.dumps(schedule.to_json()))
            pipe.zadd(keys.schedules(), {schedule.schedule_id: datetime.now(UTC).timestamp()})
            pipe.execute()
        return schedule

    def get(self, schedule_id: str) -> Schedule | None:
        if not re.fullmatch(r"[0-9a-f]{32}", schedule_id or ""):
            return None
        raw = self.r.hget(keys.schedule(schedule_id), "data")
        return Schedule.from_json(json.loads(raw)) if raw else None

    def require(self, schedule_id: str, principal: str | None = None) -> Schedule:
        """The schedule, if it exists and (unless `principal` is None: an admin) is theirs."""
        schedule = self.get(schedule_id)
        if schedule is None or (principal is not None and schedule.principal != principal):
            raise ScheduleNotFound(
                f"No schedule {schedule_id!r}.", hint="List schedules with GET /schedules."
            )
        return schedule

    def update(self, schedule: Schedule, **changes: Any) -> Schedule:
        """Apply `changes` to the stored record in one atomic read-modify-write: what another
        caller changed meanwhile stays (`schedule` only says which one to change).

        Raises:
            ScheduleNotFound: the schedule was deleted meanwhile (it is not written back).
        """
        key = keys.schedule(schedule.schedule_id)

        def write(pipe: redis.client.Pipeline) -> Schedule:
            raw = pipe.hget(key, "data")  # watched: a write by anyone else retries this
            if raw is None:
                raise ScheduleNotFound(
                    f"No schedule {schedule.schedule_id!r}.",
                    hint="List schedules with GET /schedules.",
                )
            stored = Schedule.from_json(json.loads(raw))
            updated = replace(stored, **changes, updated_at=_now())
            pipe.multi()
            pipe.hset(key, "data", json.dumps(updated.to_json()))
            return updated

        return self.r.transaction(write, key, value_from_callable=True)

    def delete(self, schedule_id: str) -> None:
        with self.r.pipeline() as pipe:
            pipe.delete(keys.schedule(schedule_id), keys.schedule_runs(schedule_id))
            pipe.zrem(keys.schedules(), schedule_id)
            pipe.execute()

    def list(self, principal: str | None = None, limit: int = 200) -> list[Schedule]:
        """Newest first, `principal`'s only (None: everyone's). Reads the index in batches until
        `limit` are found, so other principals' newer schedules never hide one's own (the
        per-principal cap bounds the walk)."""
        found: list[Schedule] = []
        start = 0
        while len(found) < limit:
            ids = self.r.zrevrange(keys.schedules(), start, start + _LIST_BATCH - 1)
            if not ids:
                break
            start += len(ids)
            with self.r.pipeline(transaction=False) as pipe:
                for schedule_id in ids:
                    pipe.hget(keys.schedule(schedule_id), "data")
                records = pipe.execute()
            for raw in records:
                schedule = Schedule.from_json(json.loads(raw)) if raw else None
                if schedule is not None and principal in (None, schedule.principal):
                    found.append(schedule)
        return found[:limit]

    def count(self, principal: str) -> int:
        """How many schedules `principal` has."""
        return len(self.list(principal, limit=1_000_000))

    # --- runs -------------------------------------------------------------------------------
    def record_run(
        self, schedule_id: str, outcome: str, job_id: str | None = None, detail: str = ""
    ) -> dict[str, Any]:
        run = {"at": _now(), "outcome": outcome, "job_id": job_id, "detail": detail}
        with self.r.pipeline() as pipe:
            pipe.lpush(keys.schedule_runs(schedule_id), json.dumps(run))
            pipe.ltrim(keys.schedule_runs(schedule_id), 0, RUNS_KEPT - 1)
            if job_id:
                pipe.hset(keys.schedule(schedule_id), "last_job", job_id)
            pipe.execute()
        return run

    def runs(self, schedule_id: str, limit: int = 20) -> list[dict[str, Any]]:
        return [json.loads(r) for r in self.r.lrange(keys.schedule_runs(schedule_id), 0, limit - 1)]

    def last_job(self, schedule_id: str) -> str | None:
        return self.r.hget(keys.schedule(schedule_id), "last_job")

    def lock(self, schedule_id: str, seconds: float = 30.0) -> Any:
        """A short lock around one firing (check overlap, submit), against a redelivery."""
        return self.r.lock(keys.schedule_firing(schedule_id), timeout=seconds)


def new_schedule_id() -> str:
    return uuid.uuid4().hex
