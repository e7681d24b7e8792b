"""The evaluation pipeline on the embedded warehouse: judged against the saved promise,
stored as history, champion against challenger, and bad input refused with a clear message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LinearRegression

from mlsys.errors import InvalidRequest, SchemaMismatch
from mlsys.evaluation.pipeline import run_evaluation
from mlsys.evaluation.spec import EvaluateSpec
from mlsys.evaluation.store import read_evaluations
from mlsys.ids import TableId
from mlsys.models.artifacts import save_model
from mlsys.registry import set_alias, sync_registry
from tests.models import ScriptedClassifier

pytestmark = pytest.mark.integration

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = DAY0 + timedelta(days=10)
ROWS_PER_DAY = 400


def _output(ids, predicted, days, version="v1") -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "PassengerId": pa.array(ids, pa.int64()),
            "Survived": pa.array(predicted, pa.int64()),
            "PredictionProbability": pa.array(np.full(n, 0.75), pa.float64()),
            "PredictionTimestamp": pa.array(
                [DAY0 + timedelta(days=int(d), hours=6) for d in days],
                pa.timestamp("us", tz="UTC"),
            ),
            "ModelName": pa.array(["titanic-survival"] * n),
            "ModelVersion": pa.array([version] * n),
            "JobId": pa.array([f"job-{version}"] * n),
        }
    )


@pytest.fixture
def tables(settings):
    project = settings.gcp_project_id
    return TableId(project, "titanic", "predictions"), TableId(project, "titanic", "outcomes")


@pytest.fixture
def promised(settings, store, warehouse):
    """titanic-survival v1 and v2, saved with the seed's test_accuracy of 0.85."""
    for version in (1, 2):
        save_model(
            ScriptedClassifier().fit(None),
            store,
            settings.bucket_for("dev"),
            "titanic-survival",
            version,
            target="Survived",
            metrics={"test_accuracy": 0.85},
        )
    sync_registry(warehouse, store, settings, "dev")


def _spec(settings, tables, **extra) -> EvaluateSpec:
    output, labels = tables
    return EvaluateSpec.parse(
        env="dev",
        output_table=str(output),
        labels_table=str(labels),
        since=DAY0.isoformat(),
        settings=settings,
        **extra,
    )


def _labels_right(predicted: np.ndarray, share: float, rng) -> np.ndarray:
    """Labels that agree with `predicted` on about `share` of the rows."""
    wrong = rng.random(len(predicted)) >= share
    return np.where(wrong, 1 - predicted, predicted)


def test_labels_flipped_on_one_day_mark_that_day_degraded_only(
    settings, warehouse, promised, tables
):
    rng = np.random.default_rng(0)
    ids = np.arange(3 * ROWS_PER_DAY)
    days = ids // ROWS_PER_DAY
    predicted = rng.integers(0, 2, len(ids))
    truth = _labels_right(predicted, 0.86, rng)
    # Day 2's outcomes come out differently for 30% of its passengers.
    flip = (days == 1) & (rng.random(len(ids)) < 0.3)
    truth = np.where(flip, 1 - truth, truth)
    output, labels = tables
    warehouse.write(_output(ids, predicted, days), output, "WRITE_TRUNCATE")
    warehouse.write(pa.table({"PassengerId": ids, "Survived": truth}), labels, "WRITE_TRUNCATE")

    result = run_evaluation(_spec(settings, tables), warehouse, settings, "eval-1", now=NOW)

    (version,) = result["versions"]
    statuses = {d["day"]: d["status"] for d in version["days"]}
    assert statuses == {"2026-03-01": "ok", "2026-03-02": "degraded", "2026-03-03": "ok"}
    (bad,) = result["degraded_days"]
    (drop,) = bad["degraded"]
    assert drop["metric"] == "accuracy" and drop["promised"] == 0.85
    assert drop["relative_drop"] > 0.15
    assert result["status"] == "degraded"
    assert result["key_columns"] == ["PassengerId"] and result["label_column"] == "Survived"

    history = read_evaluations(warehouse, settings, "dev", "titanic-survival", 1)
    assert [(h["day"], h["status"]) for h in history] == sorted(statuses.items())
    assert history[1]["degraded"][0]["metric"] == "accuracy"
    assert history[0]["matched"] == ROWS_PER_DAY

    # A job run again (redelivered) replaces its rows rather than adding to them.
    run_evaluation(_spec(settings, tables), warehouse, settings, "eval-1", now=NOW)
    assert len(read_evaluations(warehouse, settings, "dev", "titanic-survival", 1)) == 3


def test_label_delay_leaves_out_predictions_whose_outcome_is_not_known(
    settings, warehouse, promised, tables
):
    ids = np.arange(2 * ROWS_PER_DAY)
    days = ids // ROWS_PER_DAY
    output, labels = tables
    warehouse.write(_output(ids, ids % 2, days), output, "WRITE_TRUNCATE")
    warehouse.write(pa.table({"PassengerId": ids, "Survived": ids % 2}), labels, "WRITE_TRUNCATE")
    now = DAY0 + timedelta(days=2, hours=1)  # day 2's rows were predicted 19 hours ago

    result = run_evaluation(
        _spec(settings, tables, label_delay="1d"), warehouse, settings, "eval-2", now=now
    )

    (version,) = result["versions"]
    assert [d["day"] for d in version["days"]] == ["2026-03-01"]
    assert version["window"]["rows"] == ROWS_PER_DAY


def test_champion_and_challenger_are_compared_on_the_same_keys(
    settings, warehouse, promised, tables
):
    rng = np.random.default_rng(1)
    ids = np.arange(2000)
    truth = rng.integers(0, 2, len(ids))
    champion = _labels_right(truth, 0.70, rng)
    challenger = _labels_right(truth, 0.90, rng)
    output, labels = tables
    days = np.zeros(len(ids))
    warehouse.write(_output(ids, champion, days, "v1"), output, "WRITE_TRUNCATE")
    warehouse.write(_output(ids, challenger, days, "v2"), output, "WRITE_APPEND")
    warehouse.write(pa.table({"PassengerId": ids, "Survived": truth}), labels, "WRITE_TRUNCATE")

    result = run_evaluation(_spec(settings, tables), warehouse, settings, "eval-3", now=NOW)

    (comparison,) = result["comparisons"]
    assert (comparison["champion"], comparison["challenger"]) == ("v1", "v2")
    assert comparison["rows"] == len(ids)
    assert comparison["champion_accuracy"] == pytest.approx(np.mean(champion == truth))
    assert comparison["challenger_accuracy"] == pytest.approx(np.mean(challenger == truth))
    low, high = comparison["ci95"]
    assert 0 < low < comparison["difference"] < high
    assert comparison["better"] == "challenger"

    # Once @champion names v2, v2 is the champion that v1 challenges.
    set_alias(warehouse, settings, "dev", "titanic-survival", "champion", "v2")
    again = run_evaluation(_spec(settings, tables), warehouse, settings, "eval-3b", now=NOW)
    (swapped,) = again["comparisons"]
    assert (swapped["champion"], swapped["challenger"], swapped["better"]) == (
        "v2",
        "v1",
        "champion",
    )


def test_an_output_table_mlsys_did_not_write_is_refused(settings, warehouse, tables):
    output, labels = tables
    warehouse.write(pa.table({"PassengerId": [1], "Survived": [1]}), output, "WRITE_TRUNCATE")
    warehouse.write(pa.table({"PassengerId": [1], "Survived": [1]}), labels, "WRITE_TRUNCATE")

    with pytest.raises(InvalidRequest, match="was not written by mlsys: it lacks"):
        run_evaluation(_spec(settings, tables), warehouse, settings, "eval-4", now=NOW)


@pytest.mark.parametrize(("labels", "kind"), [(["no", "yes"], "string"), ([0.0, 1.0], "double")])
def test_a_label_column_of_another_type_is_refused(settings, warehouse, tables, labels, kind):
    output, labels_table = tables
    warehouse.write(_output([1, 2], [0, 1], [0, 0]), output, "WRITE_TRUNCATE")
    warehouse.write(
        pa.table({"PassengerId": [1, 2], "Survived": labels}), labels_table, "WRITE_TRUNCATE"
    )

    with pytest.raises(SchemaMismatch, match=f"Survived of .* is {kind}, but the predicted"):
        run_evaluation(_spec(settings, tables), warehouse, settings, "eval-5", now=NOW)


def test_duplicate_label_keys_are_reported_with_a_count_and_an_example(settings, warehouse, tables):
    output, labels = tables
    warehouse.write(_output([1, 2, 3], [0, 1, 1], [0, 0, 0]), output, "WRITE_TRUNCATE")
    warehouse.write(
        pa.table({"PassengerId": [1, 2, 2, 2, 3, 3], "Survived": [0, 1, 1, 0, 1, 1]}),
        labels,
        "WRITE_TRUNCATE",
    )

    with pytest.raises(InvalidRequest) as raised:
        run_evaluation(_spec(settings, tables), warehouse, settings, "eval-6", now=NOW)

    assert "has 2 key value(s) that appear more than once" in str(raised.value)
    assert "e.g. PassengerId=2: 3 rows" in str(raised.value)


def test_no_key_overlap_is_refused(settings, warehouse, tables):
    output, labels = tables
    warehouse.write(_output([1, 2], [0, 1], [0, 0]), output, "WRITE_TRUNCATE")
    warehouse.write(pa.table({"PassengerId": [7, 8], "Survived": [0, 1]}), labels, "WRITE_TRUNCATE")

    with pytest.raises(InvalidRequest, match="No key overlap: none of the predictions"):
        run_evaluation(_spec(settings, tables), warehouse, settings, "eval-7", now=NOW)


def test_a_regressor_is_judged_by_its_errors_and_compared_by_the_smaller_one(
    settings, warehouse, store, tables
):
    frame = pd.DataFrame({"Age": [1.0, 2.0, 3.0]})
    for version in (1, 2):
        save_model(
            LinearRegression().fit(frame, [1.0, 2.0, 3.0]),
            store,
            settings.bucket_for("dev"),
            "fares",
            version,
            target="Fare",
            metrics={"test_rmse": 1.0},
        )
    sync_registry(warehouse, store, settings, "dev")
    rng = np.random.default_rng(3)
    n = 2 * ROWS_PER_DAY
    ids = np.arange(n)
    days = ids // ROWS_PER_DAY
    truth = rng.normal(30, 10, n)
    # v1 is off by about 1 on the first day and by about 3 on the second; v2 by about 0.5.
    v1 = truth + rng.normal(0, 1, n) * np.where(days == 0, 1.0, 3.0)
    v2 = truth + rng.normal(0, 0.5, n)

    def output(predicted, version):
        return pa.table(
            {
                "PassengerId": pa.array(ids, pa.int64()),
                "Fare": pa.array(predicted, pa.float64()),
                "PredictionTimestamp": pa.array(
                    [DAY0 + timedelta(days=int(d), hours=6) for d in days],
                    pa.timestamp("us", tz="UTC"),
                ),
                "ModelName": pa.array(["fares"] * n),
                "ModelVersion": pa.array([version] * n),
                "JobId": pa.array([f"job-{version}"] * n),
            }
        )

    output_table, labels = tables
    warehouse.write(output(v1, "v1"), output_table, "WRITE_TRUNCATE")
    warehouse.write(output(v2, "v2"), output_table, "WRITE_APPEND")
    warehouse.write(pa.table({"PassengerId": ids, "Fare": truth}), labels, "WRITE_TRUNCATE")

    result = run_evaluation(_spec(settings, tables), warehouse, settings, "eval-8", now=NOW)

    first = next(v for v in result["versions"] if v["model_version"] == "v1")
    statuses = {d["day"]: d["status"] for d in first["days"]}
    assert statuses == {"2026-03-01": "ok", "2026-03-02": "degraded"}
    (drop,) = result["degraded_days"][0]["degraded"]
    assert drop["metric"] == "rmse" and drop["actual"] > 2.5 > drop["promised"]
    (comparison,) = result["comparisons"]
    assert comparison["better"] == "challenger" and comparison["rows"] == n
