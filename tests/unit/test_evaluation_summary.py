"""An evaluation's result in a few lines: for the CLI's stderr and the dashboard's job page."""

from __future__ import annotations

import pytest

from mlsys.evaluation.summary import summary_lines
from web.ui.present import what_it_did

pytestmark = pytest.mark.unit

RESULT = {
    "versions": [
        {
            "model_name": "titanic-survival",
            "model_version": "v1",
            "window": {
                "rows": 3000,
                "matched": 2970,
                "status": "degraded",
                "metrics": {"accuracy": 0.71234, "roc_auc": 0.8, "log_loss": 0.5},
            },
        }
    ],
    "degraded_days": [
        {
            "model_name": "titanic-survival",
            "model_version": "v1",
            "day": "2026-03-02",
            "degraded": [
                {"metric": "accuracy", "actual": 0.61, "promised": 0.82, "relative_drop": 0.256}
            ],
        }
    ],
    "comparisons": [
        {
            "champion": "v1",
            "challenger": "v2",
            "rows": 2970,
            "difference": 0.05,
            "ci95": [0.03, 0.07],
            "better": "challenger",
        }
    ],
}


def test_the_summary_names_each_version_its_degraded_days_and_the_comparison():
    assert summary_lines(RESULT) == [
        "titanic-survival/v1: 2,970 of 3,000 predictions labelled; accuracy 0.712, "
        "roc_auc 0.800 (degraded)",
        "  DEGRADED 2026-03-02 titanic-survival/v1: accuracy 0.610 < promised 0.820 (-26%)",
        "  v2 vs v1 on 2,970 shared rows: accuracy +0.050 (95% CI +0.030 to +0.070): challenger",
    ]


def test_an_evaluate_jobs_page_says_what_it_found():
    job = {"kind": "evaluate", "state": "succeeded", "params": {}, "result": RESULT}

    said = what_it_did(job)

    assert said.startswith("titanic-survival/v1: 2,970 of 3,000 predictions labelled")
    assert "DEGRADED 2026-03-02" in said
    assert what_it_did({**job, "state": "failed"}) is None
