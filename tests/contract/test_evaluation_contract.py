"""Evaluation metrics computed in the warehouse equal scikit-learn's on the same rows, on
every warehouse backend (DuckDB, and BigQuery through its emulator)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
)

from mlsys.evaluation import sql
from mlsys.evaluation.compute import compute_metrics
from mlsys.evaluation.sql import JoinSpec
from mlsys.ids import TableId
from mlsys.vis import positive_probability
from tests.contract.conftest import WAREHOUSES

pytestmark = pytest.mark.integration

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
TOL = 1e-9


@pytest.fixture(params=WAREHOUSES)
def wh(request):
    return request.getfixturevalue(request.param)


def _tables(wh) -> tuple[TableId, TableId]:
    suffix = uuid.uuid4().hex[:8]
    return (
        TableId(wh.default_project, "evaluation", f"out_{suffix}"),
        TableId(wh.default_project, "evaluation", f"labels_{suffix}"),
    )


def _output(ids, predicted, probability, days, version="v1", target_type=None) -> pa.Table:
    n = len(ids)
    columns = {
        "id": pa.array(ids, pa.int64()),
        "y": pa.array(predicted, target_type or pa.int64()),
    }
    if probability is not None:
        columns["PredictionProbability"] = pa.array(probability, pa.float64())
    columns |= {
        "PredictionTimestamp": pa.array(
            [DAY0 + timedelta(days=int(d), hours=5) for d in days], pa.timestamp("us", tz="UTC")
        ),
        "ModelName": pa.array(["m"] * n),
        "ModelVersion": pa.array([version] * n),
        "JobId": pa.array(["job-1"] * n),
    }
    return pa.table(columns)


def _join(out, labels, has_probability=True) -> JoinSpec:
    return JoinSpec(
        output=out,
        labels=labels,
        keys=("id",),
        prediction="y",
        label="y",
        since=DAY0,
        until=DAY0 + timedelta(days=30),
        has_probability=has_probability,
    )


def _by_day(groups):
    return {g.day: g for g in groups}


def test_binary_metrics_equal_sklearn_per_day_and_overall(wh):
    rng = np.random.default_rng(0)
    n = 600
    ids = np.arange(n)
    y_true = rng.integers(0, 2, n)
    # Coarse probabilities: many ties, on both sides of 0.5 and on calibration bin edges.
    p_pos = np.round(rng.random(n) * 10) / 10
    predicted = (p_pos > 0.5).astype(int)
    probability = np.where(predicted == 1, p_pos, 1 - p_pos)
    days = ids % 3
    out, labels = _tables(wh)
    wh.write(_output(ids, predicted, probability, days), out, "WRITE_TRUNCATE")
    # A few predictions without a label.
    keep = ids >= 7
    wh.write(pa.table({"id": ids[keep], "y": y_true[keep]}), labels, "WRITE_TRUNCATE")

    groups = _by_day(compute_metrics(wh, _join(out, labels), "classification"))
    # What the output table says of the positive class (1 - p where 0 was predicted).
    p_pos = positive_probability(predicted, probability)

    assert set(groups) == {"2026-03-01", "2026-03-02", "2026-03-03", None}
    per_day = [(d, (days == i) & keep) for i, d in enumerate(sorted(g for g in groups if g))]
    for day, rows in [*per_day, (None, keep)]:
        g = groups[day]
        t, p, s = y_true[rows], predicted[rows], p_pos[rows]
        assert g.matched == rows.sum()
        assert g.metrics["accuracy"] == pytest.approx(accuracy_score(t, p), abs=TOL)
        assert g.metrics["roc_auc"] == pytest.approx(roc_auc_score(t, s), abs=TOL)
        assert g.metrics["log_loss"] == pytest.approx(log_loss(t, s), abs=TOL)
        assert g.metrics["brier"] == pytest.approx(brier_score_loss(t, s), abs=TOL)
        precision, recall, f1, support = precision_recall_fscore_support(t, p, zero_division=0)
        for i, c in enumerate(["0", "1"]):
            assert g.per_class[c]["precision"] == pytest.approx(precision[i], abs=TOL)
            assert g.per_class[c]["recall"] == pytest.approx(recall[i], abs=TOL)
            assert g.per_class[c]["f1"] == pytest.approx(f1[i], abs=TOL)
            assert g.per_class[c]["support"] == support[i]
        assert g.metrics["f1_macro"] == pytest.approx(f1.mean(), abs=TOL)
        assert g.confusion["matrix"] == confusion_matrix(t, p).tolist()
        fraction, mean_predicted = calibration_curve(t, s, n_bins=10)
        (bins,) = g.calibration.values()
        assert [b["fraction_positive"] for b in bins] == pytest.approx(fraction, abs=TOL)
        assert [b["mean_predicted"] for b in bins] == pytest.approx(mean_predicted, abs=TOL)
    assert groups[None].rows == n
    assert groups[None].unmatched == 7


def test_multiclass_metrics_equal_sklearn_on_the_completed_probabilities(wh):
    rng = np.random.default_rng(1)
    n = 500
    classes = np.array(["ant", "bee", "cat"])
    ids = np.arange(n)
    y_true = classes[rng.integers(0, 3, n)]
    predicted = np.where(rng.random(n) < 0.6, y_true, classes[rng.integers(0, 3, n)])
    probability = np.round(0.34 + rng.random(n) * 0.66, 2)  # ties
    out, labels = _tables(wh)
    wh.write(
        _output(ids, predicted, probability, ids % 2, target_type=pa.string()),
        out,
        "WRITE_TRUNCATE",
    )
    wh.write(pa.table({"id": ids, "y": y_true}), labels, "WRITE_TRUNCATE")

    groups = _by_day(compute_metrics(wh, _join(out, labels), "classification"))

    # The documented completion: the predicted class has p, the others share 1 - p evenly.
    matrix = np.repeat(((1 - probability) / 2)[:, None], 3, axis=1)
    matrix[np.arange(n), np.searchsorted(classes, predicted)] = probability
    for day, rows in [("2026-03-01", ids % 2 == 0), ("2026-03-02", ids % 2 == 1), (None, ids >= 0)]:
        g = groups[day]
        t, p, m = y_true[rows], predicted[rows], matrix[rows]
        assert g.metrics["accuracy"] == pytest.approx(accuracy_score(t, p), abs=TOL)
        assert g.metrics["roc_auc"] == pytest.approx(
            roc_auc_score(t, m, multi_class="ovr", labels=classes), abs=TOL
        )
        assert g.metrics["log_loss"] == pytest.approx(log_loss(t, m, labels=classes), abs=TOL)
        assert g.metrics["brier"] == pytest.approx(brier_score_loss(t, m, labels=classes), abs=TOL)
        precision, recall, f1, _ = precision_recall_fscore_support(
            t, p, average="macro", zero_division=0
        )
        assert g.metrics["precision_macro"] == pytest.approx(precision, abs=TOL)
        assert g.metrics["recall_macro"] == pytest.approx(recall, abs=TOL)
        assert g.metrics["f1_macro"] == pytest.approx(f1, abs=TOL)
        assert g.confusion["classes"] == list(classes)
        assert g.confusion["matrix"] == confusion_matrix(t, p, labels=classes).tolist()


def test_regression_metrics_equal_sklearn(wh):
    rng = np.random.default_rng(2)
    n = 400
    ids = np.arange(n)
    y_true = np.round(rng.normal(10, 3, n), 1)
    y_true[:5] = 0.0  # MAPE leaves these out
    predicted = y_true + np.round(rng.normal(0, 1, n), 1)
    out, labels = _tables(wh)
    wh.write(
        _output(ids, predicted, None, ids % 2, target_type=pa.float64()), out, "WRITE_TRUNCATE"
    )
    wh.write(pa.table({"id": ids, "y": y_true}), labels, "WRITE_TRUNCATE")

    groups = _by_day(compute_metrics(wh, _join(out, labels, False), "regression"))

    for day, rows in [("2026-03-01", ids % 2 == 0), ("2026-03-02", ids % 2 == 1), (None, ids >= 0)]:
        g = groups[day]
        t, p = y_true[rows], predicted[rows]
        assert g.matched == rows.sum()
        assert g.metrics["mae"] == pytest.approx(mean_absolute_error(t, p), abs=TOL)
        assert g.metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(t, p)), abs=TOL)
        assert g.metrics["r2"] == pytest.approx(r2_score(t, p), abs=TOL)
        nonzero = t != 0
        assert g.metrics["mape"] == pytest.approx(
            mean_absolute_percentage_error(t[nonzero], p[nonzero]), abs=TOL
        )
        assert g.notes["mape_zero_labels_left_out"] == (~nonzero).sum()
        # Quantiles are approximate (APPROX_QUANTILES): within a few ranks of numpy's.
        residuals = np.sort(t - p)
        for q, value in g.residual_quantiles.items():
            rank = np.searchsorted(residuals, value)
            assert abs(rank - float(q) * len(residuals)) <= 0.05 * len(residuals) + 1


def test_the_checks_and_the_pairing_run_on_every_warehouse(wh):
    out, labels = _tables(wh)
    ids = np.arange(6)
    wh.write(_output(ids, [1, 1, 0, 0, 1, 1], np.full(6, 0.9), np.zeros(6)), out, "WRITE_TRUNCATE")
    wh.write(
        _output(ids, [1, 0, 0, 1, 1, 1], np.full(6, 0.9), np.zeros(6), version="v2"),
        out,
        "WRITE_APPEND",
    )
    wh.write(
        pa.table({"id": [0, 1, 2, 3, 4, 5, 5], "y": [1, 0, 0, 1, 0, 0, 0]}),
        labels,
        "WRITE_TRUNCATE",
    )
    join = JoinSpec(**{**_join(out, labels).__dict__, "model_name": "m"})

    (duplicate,) = wh.query(sql.duplicate_keys(labels, ["id"])).to_dict(orient="records")
    overlap = wh.query(sql.window_overlap(join)).iloc[0]
    (pairs,) = wh.query(sql.paired_counts(join, "v1", "v2", regression=False)).to_dict(
        orient="records"
    )

    assert (duplicate["id"], duplicate["copies"], duplicate["duplicated"]) == (5, 2, 1)
    assert (int(overlap["predictions"]), int(overlap["matched"])) == (1, 1)
    # Keys 0-4 pair once, key 5 (labelled twice) 2 x 2 times; v1 is right on 0 and 2, v2 on 0-3.
    assert {k: int(v) for k, v in pairs.items()} == {
        "n": 9,
        "both_right": 2,
        "champion_only": 0,
        "challenger_only": 2,
    }
