"""The monitoring and evaluation reads in BigQuery's SQL: what GET /models/{n}/versions/{v}/
monitoring and .../evaluations and the dashboard's pages send, run on the emulator and analysed by
ZetaSQL (tests/gcp/zetasql)."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from mlsys.evaluation.store import SCHEMA as EVALUATION_SCHEMA
from mlsys.evaluation.store import read_evaluations, save_evaluation
from mlsys.monitoring import stats
from mlsys.monitoring.stats import KEYS, SCHEMA, read_stats, stats_table
from mlsys.tables import PREDICTION_STATS

pytestmark = pytest.mark.integration


def _row(job_id: str, feature: str, version: int, computed_at: dt.datetime) -> dict:
    return {
        "job_id": job_id, "model_name": "titanic-survival", "model_version": version,
        "feature": feature, "kind": "number", "status": "ok", "rows": 10, "null_rate": 0.0,
        "null_rate_reference": 0.0, "null_rate_change": 0.0, "psi": 0.01, "unseen_rate": None,
        "unseen_examples": json.dumps([]), "mean": 1.5, "profile": "{}",
        "computed_at": computed_at, "principal": "alice",
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


def test_the_owner_of_a_row_is_read_back_and_a_table_made_before_it_still_reads(
    bigquery_warehouse, monkeypatch
):
    """`principal` came after the table: a table an older release made reads without it, and
    the first write that carries it adds the column (an ALTER TABLE ZetaSQL analyses too)."""
    wh, settings = bigquery_warehouse, bigquery_warehouse.settings
    table = stats_table(settings, "dev").with_table("prediction_stats_older")
    monkeypatch.setattr(stats, "stats_table", lambda settings, env: table)
    older = [dict(f) for f in PREDICTION_STATS.fields if f["name"] != "principal"]
    wh.tables.create(table, older, exists_ok=False)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    legacy = pa.Table.from_pylist([_row("job-1", "Age", 1, now)]).drop_columns(["principal"])
    wh.merge(table, legacy, KEYS)

    before = read_stats(wh, settings, "dev", "titanic-survival", 1)
    wh.merge(table, pa.Table.from_pylist([_row("job-2", "Age", 1, now)], SCHEMA), KEYS)
    after = read_stats(wh, settings, "dev", "titanic-survival", 1)

    assert [("principal" in r) for r in before] == [False]
    assert [(r["job_id"], r["principal"]) for r in after] == [("job-1", None), ("job-2", "alice")]


def test_a_versions_evaluations_are_read_back_by_day(bigquery_warehouse):
    """`rows` is a reserved word in BigQuery's SQL: the read quotes every column."""
    wh, settings = bigquery_warehouse, bigquery_warehouse.settings
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rows = [
        {"job_id": job, "model_name": "titanic-survival", "model_version": 1, "day": day,
         "task": "classification", "output_table": "p.d.scores", "labels_table": "p.d.labels",
         "rows": 10, "matched": 9, "unmatched": 1, "accuracy": 0.9, "status": "ok",
         "degraded": "[]", "details": "{}", "window_start": now, "window_end": now,
         "evaluated_at": now, "principal": "alice"}
        for job, day in (("eval-2", now.date()), ("eval-1", now.date() - dt.timedelta(days=1)))
    ]  # fmt: skip
    save_evaluation(wh, settings, "dev", pa.Table.from_pylist(rows, schema=EVALUATION_SCHEMA))

    read = read_evaluations(wh, settings, "dev", "titanic-survival", 1, details=True)

    assert [(r["job_id"], r["rows"], r["principal"]) for r in read] == [
        ("eval-1", 10, "alice"),
        ("eval-2", 10, "alice"),
    ]
