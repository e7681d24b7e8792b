"""The monitoring reads in BigQuery's SQL: what GET /models/{n}/versions/{v}/monitoring and the
dashboard's job chart send, run on the emulator and analysed by ZetaSQL (tests/gcp/zetasql)."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from mlsys.prediction_stats import KEYS, SCHEMA, read_stats, stats_table

pytestmark = pytest.mark.integration


def _row(job_id: str, feature: str, version: int, computed_at: dt.datetime) -> dict:
    return {
        "job_id": job_id, "model_name": "titanic-survival", "model_version": version,
        "feature": feature, "kind": "number", "status": "ok", "rows": 10, "null_rate": 0.0,
        "null_rate_reference": 0.0, "null_rate_change": 0.0, "psi": 0.01, "unseen_rate": None,
        "unseen_examples": json.dumps([]), "mean": 1.5, "profile": "{}",
        "computed_at": computed_at,
    }  # fmt: skip


def test_a_versions_stats_are_read_back_oldest_job_first(bigquery_warehouse):
    wh, settings = bigquery_warehouse, bigquery_warehouse.settings
    table = stats_table(settings, "dev")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rows = [
        _row("job-2", "Age", 1, now),
        _row("job-1", "Fare", 1, now - dt.timedelta(hours=1)),
        _row("job-1", "Age", 1, now - dt.timedelta(hours=1)),
        _row("job-3", "Age", 2, now),
    ]
    wh.merge(table, pa.Table.from_pylist(rows, schema=SCHEMA), KEYS)

    read = read_stats(wh, settings, "dev", "titanic-survival", 1)

    assert [(r["job_id"], r["feature"]) for r in read] == [
        ("job-1", "Age"),
        ("job-1", "Fare"),
        ("job-2", "Age"),
    ]
    assert {r["rows"] for r in read} == {10}
