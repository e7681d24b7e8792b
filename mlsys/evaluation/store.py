"""The evaluations table, `mlsys_{env}.evaluations`: one row per (job, model version, UTC day).

Written by evaluate jobs (a MERGE on those keys: a re-run of the same job writes nothing new);
read back as a version's history for the API, the CLI, the dashboard and the notebooks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from mlsys.evaluation.metrics import GroupMetrics, version_number
from mlsys.ids import TableId, check_model_name
from mlsys.settings import Settings
from mlsys.tables import EVALUATIONS, arrow_fields
from mlsys.warehouse.base import Warehouse
from mlsys.warehouse.bq_sql import col, string_literal

KEYS = ["job_id", "model_name", "model_version", "day"]
SCHEMA = arrow_fields(EVALUATIONS)
#: Metrics kept in columns of their own (the rest stays in `details`).
METRIC_COLUMNS = [
    "accuracy",
    "roc_auc",
    "log_loss",
    "brier",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "mae",
    "rmse",
    "r2",
    "mape",
]


def evaluations_table(settings: Settings, env: str) -> TableId:
    return TableId(settings.gcp_project_id, settings.dataset_for(env), EVALUATIONS.name)


def evaluation_rows(
    job_id: str,
    output_table: str,
    labels_table: str,
    window: tuple[datetime, datetime],
    days: Iterable[tuple[GroupMetrics, dict[str, Any]]],
    principal: str | None = None,
) -> pa.Table:
    """The table's rows for the per-day groups of one job (and their judgements); `principal`
    is who submitted the job (None: a run of the command line, which no principal owns)."""
    now = datetime.now(UTC)
    rows = []
    for group, judgement in days:
        number = version_number(group.model_version)
        if group.day is None or number is None:
            continue
        details = {
            k: v
            for k, v in group.to_json().items()
            if k in ("per_class", "confusion", "calibration", "residual_quantiles", "notes")
        }
        details["metrics"] = group.metrics
        details["promise"] = {k: judgement[k] for k in ("promised", "threshold")}
        rows.append(
            {
                "job_id": job_id,
                "model_name": group.model_name,
                "model_version": number,
                "day": date.fromisoformat(group.day),
                "task": group.task,
                "output_table": output_table,
                "labels_table": labels_table,
                "rows": group.rows,
                "matched": group.matched,
                "unmatched": group.unmatched,
                **{m: group.metrics.get(m) for m in METRIC_COLUMNS},
                "status": judgement["status"],
                "degraded": json.dumps(judgement["degraded"]),
                "details": json.dumps(details),
                "window_start": window[0],
                "window_end": window[1],
                "evaluated_at": now,
                "principal": principal,
            }
        )
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def save_evaluation(warehouse: Warehouse, settings: Settings, env: str, rows: pa.Table) -> int:
    """Store a job's rows; returns how many were new or changed."""
    if not rows.num_rows:
        return 0
    return warehouse.merge(evaluations_table(settings, env), rows, KEYS).changed


def read_evaluations(
    warehouse: Warehouse,
    settings: Settings,
    env: str,
    model_name: str,
    model_version: int,
    details: bool = False,
) -> list[dict[str, Any]]:
    """Every stored row of one model version, by day then evaluation time, with the
    `principal` that owns it (readers filter on it and drop it: `web.jobs.readable`)."""
    table = evaluations_table(settings, env)
    present = warehouse.column_names(table)
    if present is None:
        return []
    # Only columns the table has: one made before a column gains it at the next job's write.
    # Every name quoted: `rows` is a reserved word in BigQuery's SQL.
    columns = [col(n) for n in SCHEMA.names if (details or n != "details") and n in present]
    sql = (
        f"SELECT {', '.join(columns)} FROM `{table}` "
        f"WHERE {col('model_name')} = {string_literal(check_model_name(model_name))} "
        f"AND {col('model_version')} = {int(model_version)} "
        f"ORDER BY {col('day')}, {col('evaluated_at')}, {col('job_id')}"
    )
    records = []
    for row in warehouse.query_arrow(sql).to_pylist():
        row["degraded"] = json.loads(row["degraded"] or "[]")
        if details:
            row["details"] = json.loads(row["details"] or "{}")
        for key in ("day", "window_start", "window_end", "evaluated_at"):
            if row.get(key) is not None:
                row[key] = row[key].isoformat()
        records.append(row)
    return records
