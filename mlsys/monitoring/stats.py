"""Monitoring of predict jobs: profile each shard while it streams, merge the shards' profiles
at commit, compare with the model's training profile and keep one row per feature and job in
`mlsys_{env}.prediction_stats`.

The predict pipeline only calls `ShardMonitor.observe(inputs, outputs)` per batch and
`record_stats` at its commit (`mlsys.predict.monitored`); everything else (what to profile,
where it is stored, how it is read back) is here, taking plain values.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from mlsys.ids import TableId, check_model_name
from mlsys.monitoring.drift import DriftReport, Thresholds, compare
from mlsys.monitoring.profiles import (
    PREDICTION,
    PROBABILITY,
    Kind,
    Profile,
    job_profile,
    kind_of,
    merge_profiles,
)
from mlsys.settings import Settings
from mlsys.tables import PREDICTION_STATS, arrow_fields
from mlsys.warehouse.base import Warehouse
from mlsys.warehouse.bq_sql import col, string_literal

log = logging.getLogger(__name__)

STATS_TABLE = PREDICTION_STATS.name
KEYS = ["job_id", "feature"]
#: From the table's one definition (`mlsys.tables`), which infra/ creates the BigQuery table from.
SCHEMA = arrow_fields(PREDICTION_STATS)


def stats_table(settings: Settings, env: str) -> TableId:
    return TableId(settings.gcp_project_id, settings.dataset_for(env), STATS_TABLE)


def reference_of(data: dict[str, Any] | None) -> Profile | None:
    """The training profile saved with a model; None for models saved without one (or with
    one this version cannot read: monitoring never stops a job)."""
    if not data:
        return None
    try:
        return Profile.from_json(data)
    except (KeyError, TypeError, ValueError) as error:
        log.warning("ignoring an unreadable training profile: %s", error)
        return None


class ShardMonitor:
    """Profiles one shard's input features and the model's output, batch by batch."""

    def __init__(
        self, reference: Profile | None, features: list[str], target: str, task: str
    ) -> None:
        self.reference = reference
        self.features = features
        self.target = target
        self.task = task
        self.profile: Profile | None = None

    def _start(self, inputs: pa.Schema, outputs: pa.Schema) -> Profile:
        kinds: dict[str, Kind] = {f: kind_of(inputs.field(f).type) for f in self.features}
        # The worker reads the task off the model (it may correct the metadata's): the output
        # schema says which it is.
        classification = "PredictionProbability" in outputs.names
        kinds[PREDICTION] = (
            "category" if classification else kind_of(outputs.field(self.target).type)
        )
        if classification:
            kinds[PROBABILITY] = "number"
        return job_profile(self.reference, kinds)

    def observe(self, inputs: pa.RecordBatch, outputs: pa.RecordBatch) -> None:
        if self.profile is None:
            self.profile = self._start(inputs.schema, outputs.schema)
        profile = self.profile
        profile.rows += inputs.num_rows
        for feature in self.features:
            profile.features[feature].update(inputs.column(feature))
        profile.features[PREDICTION].update(outputs.column(self.target))
        if PROBABILITY in profile.features:
            profile.features[PROBABILITY].update(outputs.column("PredictionProbability"))

    def result(self) -> Profile:
        """The shard's profile (empty when the shard had no rows)."""
        return self.profile if self.profile is not None else Profile()


def summarize(
    reference_profile: dict[str, Any] | None, profiles: Iterable[Profile], settings: Settings
) -> tuple[Profile, DriftReport]:
    """Merge the shards' profiles and grade them against the training profile (as saved
    with the model: JSON, or None)."""
    profile = merge_profiles(profiles)
    reference = reference_of(reference_profile)
    return profile, compare(profile, reference, Thresholds.from_mapping(settings.drift_thresholds))


def stats_rows(
    job_id: str,
    model_name: str,
    model_version: int,
    profile: Profile,
    report: DriftReport,
    principal: str | None = None,
) -> pa.Table:
    """One row per feature; `principal` is who submitted the job (None: a run of the
    command line, which no principal owns)."""
    now = datetime.now(UTC)
    rows = []
    for drift in report.features:
        rows.append(
            {
                "job_id": job_id,
                "model_name": model_name,
                "model_version": int(model_version),
                "feature": drift.feature,
                "kind": drift.kind,
                "status": drift.status,
                "rows": drift.rows,
                "null_rate": drift.null_rate,
                "null_rate_reference": drift.null_rate_reference,
                "null_rate_change": drift.null_rate_change,
                "psi": drift.psi,
                "unseen_rate": drift.unseen_rate,
                "unseen_examples": json.dumps(list(drift.unseen_examples)),
                "mean": drift.mean,
                "profile": json.dumps(profile.features[drift.feature].to_json()),
                "computed_at": now,
                "principal": principal,
            }
        )
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def record_stats(
    warehouse: Warehouse,
    settings: Settings,
    env: str,
    job_id: str,
    model_name: str,
    model_version: int,
    reference_profile: dict[str, Any] | None,
    profiles: Iterable[Profile],
    principal: str | None = None,
) -> dict[str, Any]:
    """Store a job's per-feature drift (a re-run of the same commit writes nothing new) and
    return the summary its job record shows. Monitoring never fails a job that committed: an
    error here is logged and reported as status `unavailable`."""
    try:
        profile, report = summarize(reference_profile, profiles, settings)
        rows = stats_rows(job_id, model_name, model_version, profile, report, principal)
        if rows.num_rows:
            warehouse.merge(stats_table(settings, env), rows, KEYS)
    except Exception as error:
        log.exception("monitoring of job %s failed", job_id)
        return {"status": "unavailable", "error": f"{type(error).__name__}: {error}"}
    return {**report.summary(), "rows": profile.rows}


def read_stats(
    warehouse: Warehouse, settings: Settings, env: str, model_name: str, model_version: int
) -> list[dict[str, Any]]:
    """Every stored row of one model version, oldest job first, with the `principal` that
    owns it (readers filter on it and drop it: `web.jobs.readable`)."""
    table = stats_table(settings, env)
    present = warehouse.column_names(table)
    if present is None:
        return []
    # Only columns the table has: one made before a column gains it at the next job's write.
    # Every name quoted: `rows` is a reserved word in BigQuery's SQL.
    columns = [col(n) for n in SCHEMA.names if n != "profile" and n in present]
    sql = (
        f"SELECT {', '.join(columns)} FROM `{table}` "
        f"WHERE {col('model_name')} = {string_literal(check_model_name(model_name))} "
        f"AND {col('model_version')} = {int(model_version)} "
        f"ORDER BY {col('computed_at')}, {col('job_id')}, {col('feature')}"
    )
    frame = warehouse.query(sql)
    records = []
    for row in frame.to_dict(orient="records"):
        row = {k: (None if _is_nan(v) else v) for k, v in row.items()}
        row["unseen_examples"] = json.loads(row["unseen_examples"] or "[]")
        row["computed_at"] = _iso(row["computed_at"])
        records.append(row)
    return records


def history(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped by job, in time order: what GET .../monitoring returns."""
    jobs: dict[str, dict[str, Any]] = {}
    for row in rows:
        job = jobs.setdefault(
            row["job_id"],
            {"job_id": row["job_id"], "computed_at": row["computed_at"], "features": []},
        )
        job["features"].append({k: v for k, v in row.items() if k not in ("job_id",)})
    result = []
    for job in jobs.values():
        statuses = [f["status"] for f in job["features"]]
        job["status"] = max(statuses, key={"ok": 0, "warn": 1, "alert": 2}.__getitem__)
        result.append(job)
    return result


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def summary_lines(summary: dict[str, Any] | None) -> list[str]:
    """The closing lines of a CLI run: overall status, then the features that moved."""
    if not summary:
        return []
    status = summary.get("status", "unavailable")
    if status == "unavailable":
        return [f"monitoring: unavailable ({summary.get('error', 'no detail')})"]
    if not summary.get("has_reference"):
        return [
            f"monitoring: {status} - counts only; the model was saved without a training "
            "profile (save_model(..., training_data=X) records one)"
        ]
    outputs = " and the predictions" if summary.get("outputs") else ""
    lines = [
        f"monitoring: {status.upper()} - {summary.get('alert', 0)} alert, "
        f"{summary.get('warn', 0)} warn over {summary.get('features', 0)} features{outputs}"
    ]
    for worst in summary.get("worst") or []:
        if worst["status"] == "ok":
            continue
        parts = []
        if worst.get("psi") is not None:
            parts.append(f"psi {worst['psi']:.3f}")
        if abs(worst.get("null_rate_change") or 0) >= 0.0005:
            parts.append(f"null rate {worst['null_rate_change']:+.1%}")
        if worst.get("unseen_rate"):
            parts.append(f"unseen {worst['unseen_rate']:.1%}")
        lines.append(f"  {worst['status']:<5} {worst['feature']}: {', '.join(parts)}")
    return lines
