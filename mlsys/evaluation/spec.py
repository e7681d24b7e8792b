"""What a caller asks to evaluate, validated once: the job's parameters.

The window of prediction times is `[since, until)`. `until` defaults to now and is moved back
by `label_delay` (rows predicted later cannot have their outcome yet); `since` defaults to
`days` before that end. A schedule stores neither, so each run evaluates the days before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mlsys.errors import InvalidRequest, ProtectedTable
from mlsys.ids import TableId, VersionSpec, check_column, check_model_name
from mlsys.predict.protect import is_protected
from mlsys.settings import Settings

MAX_KEY_COLUMNS = 16
DEFAULT_DAYS = 30
MAX_DAYS = 3660
#: The earliest `since` or `until` accepted.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_DELAY = re.compile(r"(\d+)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_delay(value: object) -> int:
    """Seconds of a label delay: a number of seconds, or `90m`, `12h`, `3d`."""
    if value is None or value == "":
        return 0
    match = _DELAY.fullmatch(str(value).strip().lower())
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        seconds = value
    elif match:
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise InvalidRequest(
            f"Invalid label_delay {value!r}.",
            hint="Give seconds, or a number with s, m, h or d (e.g. 3d: outcomes are known "
            "three days after the prediction).",
        )
    if not seconds <= MAX_DAYS * 86400:  # NaN too
        raise InvalidRequest(
            f"label_delay {value!r} is longer than {MAX_DAYS} days.",
            hint="Give the time after a prediction when its outcome is known, e.g. 3d.",
        )
    return int(seconds)


def parse_moment(value: object, name: str) -> datetime | None:
    """A point in time from an ISO date or date-time (UTC unless it says otherwise)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest(
                f"Invalid {name} {value!r}.",
                hint="Use an ISO date or time, e.g. 2024-06-01 or 2024-06-01T06:00:00Z.",
            ) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment < EARLIEST:
        # The window's start is counted back from its end in days: keep that in the calendar.
        raise InvalidRequest(
            f"{name} {value!r} is before {EARLIEST.year}.",
            hint="Give a time when predictions were made, e.g. 2024-06-01.",
        )
    return moment


def _columns(value: list[str] | str | None, name: str) -> tuple[str, ...] | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        value = [c.strip() for c in value.split(",") if c.strip()]
    if len(value) > MAX_KEY_COLUMNS:
        raise InvalidRequest(f"At most {MAX_KEY_COLUMNS} {name} are allowed.")
    return tuple(check_column(c) for c in value)


@dataclass(frozen=True)
class EvaluateSpec:
    """An evaluation request: which predictions, which labels, which window."""

    env: str
    output_table: TableId
    labels_table: TableId
    key_columns: tuple[str, ...] | None = None
    label_column: str | None = None
    prediction_column: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    days: int = DEFAULT_DAYS
    label_delay_seconds: int = 0
    threshold: float | None = None

    @classmethod
    def parse(
        cls,
        *,
        env: str,
        output_table: str | TableId,
        labels_table: str | TableId,
        settings: Settings,
        key_columns: list[str] | str | None = None,
        label_column: str | None = None,
        prediction_column: str | None = None,
        model_name: str | None = None,
        model_version: object = None,
        since: object = None,
        until: object = None,
        days: int | None = None,
        label_delay: object = None,
        threshold: float | None = None,
    ) -> EvaluateSpec:
        """Build a spec from user input; every identifier and time is checked here.

        Raises:
            InvalidRequest / InvalidIdentifier: a value is malformed (the message says how).
            ProtectedTable: a table is in mlsys' own datasets.
        """
        outputs, labels = TableId.parse(output_table), TableId.parse(labels_table)
        for role, table in (("output_table", outputs), ("labels_table", labels)):
            if is_protected(table, settings):
                raise ProtectedTable(
                    f"{role} {table} is in a dataset mlsys keeps its own tables in.",
                    hint="Evaluate a predictions table in another dataset.",
                )
        start, end = parse_moment(since, "since"), parse_moment(until, "until")
        if start is not None and end is not None and start >= end:
            raise InvalidRequest(
                f"since ({start.isoformat()}) is not before until ({end.isoformat()}).",
                hint="Give a window that starts before it ends.",
            )
        if isinstance(days, bool):  # an int to Python, never a number of days
            raise InvalidRequest(f"days must be a whole number between 1 and {MAX_DAYS}.")
        span = DEFAULT_DAYS if days is None else int(days)
        if not 1 <= span <= MAX_DAYS:
            raise InvalidRequest(f"days must be between 1 and {MAX_DAYS}.")
        delay = parse_delay(label_delay)
        # Outcomes are known `label_delay` after a prediction: a window that starts later than
        # that (a future since, or one within the delay) has nothing to read yet. Said now,
        # not by a job that fails later; time only moves the limit on, so a job or schedule
        # whose window passed here passes again when it runs.
        latest = datetime.now(UTC) - timedelta(seconds=delay)
        if start is not None and start >= (latest if end is None else min(end, latest)):
            raise InvalidRequest(
                f"since ({start.isoformat()}) is after the newest predictions this evaluation "
                f"may read ({latest.isoformat(timespec='seconds')}: now, less label_delay).",
                hint="Give a start in the past, further back than label_delay.",
            )
        if threshold is not None and not 0 < float(threshold) < 1:
            raise InvalidRequest(
                f"threshold {threshold} is not a fraction.",
                hint="Give the relative drop that marks a day degraded, e.g. 0.05 for 5%.",
            )
        version = None
        if model_version not in (None, ""):
            if model_name in (None, ""):
                raise InvalidRequest("model_version needs model_name.")
            version = str(VersionSpec.parse(model_version))
        return cls(
            env=settings.check_env(env),
            output_table=outputs,
            labels_table=labels,
            key_columns=_columns(key_columns, "key_columns"),
            label_column=check_column(label_column) if label_column else None,
            prediction_column=check_column(prediction_column) if prediction_column else None,
            model_name=check_model_name(model_name) if model_name else None,
            model_version=version,
            since=start,
            until=end,
            days=span,
            label_delay_seconds=delay,
            threshold=float(threshold) if threshold is not None else None,
        )

    def window(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The [since, until) of prediction times this evaluation reads, resolved at `now`."""
        now = now or datetime.now(UTC)
        latest = now - timedelta(seconds=self.label_delay_seconds)
        end = min(self.until, latest) if self.until is not None else latest
        start = self.since if self.since is not None else end - timedelta(days=self.days)
        return start, end

    def resolved(self, now: datetime | None = None) -> EvaluateSpec:
        """The same request with its window fixed at `now` (a job run again later, or on
        another worker, reads the same rows)."""
        since, until = self.window(now)
        return replace(self, since=since, until=until)

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "output_table": str(self.output_table),
            "labels_table": str(self.labels_table),
            "key_columns": list(self.key_columns) if self.key_columns else None,
            "label_column": self.label_column,
            "prediction_column": self.prediction_column,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "days": self.days,
            "label_delay": self.label_delay_seconds,
            "threshold": self.threshold,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], settings: Settings) -> EvaluateSpec:
        """Parse stored parameters again, with every check `parse` makes."""
        fields = {k: v for k, v in data.items() if k not in ("schedule_id", "trigger")}
        return cls.parse(settings=settings, **fields)
