"""Against the promise: which saved metrics count, which way is worse, the paired interval."""

from __future__ import annotations

import pytest

from mlsys.evaluation.metrics import GroupMetrics
from mlsys.evaluation.promise import (
    DEFAULT_THRESHOLD,
    judge,
    paired_comparison,
    promised_metrics,
    threshold_of,
)

pytestmark = pytest.mark.unit


def _group(matched: int = 500, **metrics) -> GroupMetrics:
    return GroupMetrics("m", "v1", "2026-03-01", "classification", 500, matched, metrics)


def test_the_seeds_test_metrics_and_saved_metrics_are_the_promise():
    metadata = {
        "test_accuracy": 0.81,
        "test_roc_auc": 0.86,
        "test_note": "not a number",
        "hyperparameters": {"max_depth": 5},
        "metrics": {"f1": 0.7, "test_auc": 0.9, "rmse": 2.5, "flag": True},
    }

    assert promised_metrics(metadata) == {
        "accuracy": 0.81,
        "roc_auc": 0.86,  # the top-level test_ entry wins over metrics' test_auc
        "f1_macro": 0.7,
        "rmse": 2.5,
    }
    assert promised_metrics(None) == {}


def test_the_threshold_comes_from_the_request_then_the_metadata_then_the_default():
    assert threshold_of({"evaluation_threshold": 0.1}, 0.2) == 0.2
    assert threshold_of({"evaluation_threshold": 0.1}, None) == 0.1
    assert threshold_of({"evaluation_threshold": 3}, None) == DEFAULT_THRESHOLD
    assert threshold_of(None, None) == DEFAULT_THRESHOLD


def test_a_drop_beyond_the_threshold_is_degraded_in_the_metrics_direction():
    promise = {"accuracy": 0.80, "log_loss": 0.40}

    fine = judge(_group(accuracy=0.77, log_loss=0.41), promise, 0.05)
    worse = judge(_group(accuracy=0.70, log_loss=0.50), promise, 0.05)
    better = judge(_group(accuracy=0.95, log_loss=0.10), promise, 0.05)

    assert fine["status"] == "ok" and fine["degraded"] == []
    assert worse["status"] == "degraded"
    assert [(d["metric"], round(d["relative_drop"], 3)) for d in worse["degraded"]] == [
        ("accuracy", 0.125),
        ("log_loss", 0.25),
    ]
    assert better["status"] == "ok"


def test_too_few_rows_or_no_promise_are_never_degraded():
    assert judge(_group(10, accuracy=0.1), {"accuracy": 0.9}, 0.05)["status"] == "too_few_rows"
    assert judge(_group(accuracy=0.1), {}, 0.05)["status"] == "no_promise"
    assert judge(_group(accuracy=0.1), {"roc_auc": 0.9}, 0.05)["status"] == "no_promise"


def test_the_paired_comparison_says_who_was_right_more_often():
    clear = paired_comparison("v1", "v2", both=700, champion_only=20, challenger_only=180, n=1000)
    close = paired_comparison("v1", "v2", both=700, champion_only=50, challenger_only=55, n=1000)

    assert clear["difference"] == pytest.approx(0.16)
    assert clear["better"] == "challenger" and clear["ci95"][0] > 0
    assert clear["champion_accuracy"] == pytest.approx(0.72)
    assert close["better"] == "no_difference" and close["ci95"][0] < 0 < close["ci95"][1]
    assert paired_comparison("v1", "v2", 0, 0, 0, 0) == {
        "champion": "v1",
        "challenger": "v2",
        "rows": 0,
    }
