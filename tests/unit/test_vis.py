"""The plotting helpers draw what they claim, on the Agg backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from mlsys import datasets, vis  # noqa: E402
from mlsys.demo import CATEGORICAL, NUMERIC, titanic_pipeline  # noqa: E402

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def passengers() -> pd.DataFrame:
    return datasets.titanic(600, seed=3)


@pytest.fixture(scope="module")
def fitted(passengers):
    x = passengers[NUMERIC + CATEGORICAL]
    return titanic_pipeline(n_estimators=10).fit(x, passengers[datasets.TARGET]), x


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    proba = np.clip(0.3 * y + 0.35 + rng.normal(0, 0.2, 400), 0, 1)
    return y, proba


def legend_texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_set_style_changes_rcparams():
    with matplotlib.rc_context():
        vis.set_style(font_scale=2.0)
        assert plt.rcParams["font.size"] == 20
        assert plt.rcParams["axes.spines.top"] is False
        assert plt.rcParams["axes.prop_cycle"].by_key()["color"][0] == vis.PALETTE[0]


def test_positive_probability_flips_the_probability_of_class_0():
    p = vis.positive_probability([1, 0, 1, None], [0.9, 0.8, 0.6, np.nan])
    np.testing.assert_allclose(p[:3], [0.9, 0.2, 0.6])
    assert np.isnan(p[3])
    labels = vis.positive_probability(["yes", "no"], [0.7, 0.7], positive="yes")
    np.testing.assert_allclose(labels, [0.7, 0.3])


def test_rate_by_has_one_bar_per_value_including_missing(passengers):
    frame = passengers.copy()
    frame.loc[:4, "Embarked"] = None
    ax = vis.plot_rate_by(frame, "Embarked")
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["C", "Q", "S", vis.MISSING_LABEL]
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 4
    expected = frame.groupby("Embarked")["Survived"].mean()
    assert heights[3] == pytest.approx(frame.loc[:4, "Survived"].mean())
    assert heights[0] == pytest.approx(expected["C"])
    assert ax.get_ylabel() == "Survived rate" and ax.get_xlabel() == "Embarked"
    assert sum(t.get_text().startswith("n=") for t in ax.texts) == len(labels)


def test_rate_by_draws_on_a_given_axes_and_handles_numeric_keys(passengers):
    frame = passengers.astype({"Pclass": float})
    frame.loc[0, "Pclass"] = np.nan
    fig, axes = plt.subplots(1, 2)
    assert vis.plot_rate_by(frame, "Pclass", ax=axes[1]) is axes[1]
    assert len(axes[1].patches) == 4 and not axes[0].patches
    assert axes[1].texts[-1].get_text() == "n=1"


def test_distribution_by_class_has_a_histogram_per_class(passengers):
    ax = vis.plot_distribution_by_class(passengers, "Age", bins=12)
    assert len(ax.patches) == 2 * 12
    assert legend_texts(ax) == ["Survived=0", "Survived=1"]
    assert ax.get_xlabel() == "Age" and ax.get_ylabel() == "density"


def test_prediction_distribution_splits_by_true_class(scores):
    y, proba = scores
    ax = vis.plot_prediction_distribution(proba, y, bins=10)
    assert len(ax.patches) == 20
    assert sum(p.get_height() for p in ax.patches) == len(y)
    assert legend_texts(ax) == ["true class 0", "true class 1"]
    assert vis.plot_prediction_distribution(proba).get_legend() is None


def test_calibration_plots_bins_and_brier(scores):
    y, proba = scores
    ax = vis.plot_calibration(y, proba, n_bins=5, label="forest")
    diagonal, curve = ax.get_lines()
    assert list(diagonal.get_xdata()) == [0, 1]
    assert 1 <= len(curve.get_xdata()) <= 5
    assert np.all((curve.get_ydata() >= 0) & (curve.get_ydata() <= 1))
    assert legend_texts(ax)[1].startswith("forest (Brier = 0.")
    assert ax.get_xlabel() == "mean predicted probability"


def test_calibration_refuses_a_single_class():
    with pytest.raises(ValueError, match="binary"):
        vis.plot_calibration([1, 1, 1], [0.2, 0.5, 0.9])


def test_roc_shows_the_auc_in_the_legend(scores):
    y, proba = scores
    ax = vis.plot_roc(y, proba)
    assert f"model (AUC = {roc_auc_score(y, proba):.3f})" in legend_texts(ax)
    curve = ax.get_lines()[1]
    assert curve.get_xdata()[0] == 0 and curve.get_xdata()[-1] == 1
    assert ax.get_xlabel() == "false positive rate"


def test_confusion_matrix_annotates_every_cell():
    y_true = [0, 0, 1, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 0, 2]
    ax = vis.plot_confusion_matrix(y_true, y_pred)
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == 9
    assert cells[:3] == ["1", "1", "0"]  # row "true 0": one right, one called 1
    assert ax.get_ylabel() == "True label"
    rates = vis.plot_confusion_matrix(y_true, y_pred, normalize="true")
    assert [t.get_text() for t in rates.texts][:3] == ["0.50", "0.50", "0.00"]


def test_feature_importance_names_the_column_transformer_outputs(fitted):
    model, _ = fitted
    series = vis.feature_importance(model)
    assert "categorical__Sex_female" in series.index and "numeric__Age" in series.index
    assert series.sum() == pytest.approx(1.0)
    assert series.is_monotonic_decreasing


def test_feature_importance_permutation_uses_input_columns(fitted, passengers):
    model, x = fitted
    series = vis.feature_importance(model, x, passengers[datasets.TARGET], n_repeats=2)
    assert set(series.index) == set(NUMERIC + CATEGORICAL)
    assert series.index[0] == "Sex"


def test_feature_importance_of_a_linear_model_uses_coefficients_largest_first():
    # The weaker column comes first in the frame: only the sort puts the stronger one first.
    x = pd.DataFrame({"noise": [1.0, 0, 1, 0, 1, 0], "signal": [0.0, 1, 2, 3, 4, 5]})
    model = LogisticRegression().fit(x, [0, 0, 0, 1, 1, 1])
    importances = vis.feature_importance(model)
    assert list(importances.index) == ["signal", "noise"]
    assert importances["signal"] == pytest.approx(abs(model.coef_[0][1]))


def test_plot_feature_importance_draws_top_bars(fitted, passengers):
    model, x = fitted
    ax = vis.plot_feature_importance(model, top=4)
    assert len(ax.patches) == 4
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names[-1] == vis.feature_importance(model).index[0]
    ax = vis.plot_feature_importance(model, x.head(200), passengers[datasets.TARGET].head(200))
    assert len(ax.patches) == len(x.columns)
    assert ax.get_xlabel().startswith("permutation importance")


def test_setup_plot_style_is_the_seeds_name_for_set_style():
    with plt.rc_context():
        vis.setup_plot_style(font_scale=1.5)
        assert plt.rcParams["font.size"] == 15
        assert plt.rcParams["axes.spines.top"] is False


def test_plot_drift_draws_one_line_per_feature_and_the_thresholds():
    history = [
        {
            "job_id": f"job-{n}",
            "features": [
                {"feature": "Fare", "psi": 0.02 + 0.2 * n, "status": "ok"},
                {"feature": "Sex", "psi": 0.01, "status": "ok"},
                {"feature": "Age", "psi": None, "status": "ok"},
            ],
        }
        for n in range(3)
    ]
    ax = vis.plot_drift({"jobs": history})
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["Fare", "Sex", "warn", "alert"]  # Age has no PSI: not drawn
    assert list(ax.get_lines()[0].get_ydata()) == pytest.approx([0.02, 0.22, 0.42])
    assert "no monitored jobs" in vis.plot_drift([]).get_title()


def _evaluations():
    def row(day, accuracy, status, degraded=()):
        return {
            "model_version": 1,
            "day": day,
            "accuracy": accuracy,
            "status": status,
            "degraded": list(degraded),
            "evaluated_at": f"{day}T06:00:00+00:00",
        }

    drop = {"metric": "accuracy", "promised": 0.82, "actual": 0.6, "drop": 0.22}
    return {
        "evaluations": [
            row("2026-03-01", 0.81, "ok"),
            row("2026-03-02", 0.60, "degraded", [drop]),
            row("2026-03-03", 0.80, "ok"),
        ]
    }


def test_plot_evaluation_draws_each_day_the_promise_and_the_degraded_days():
    ax = vis.plot_evaluation(_evaluations(), "accuracy")

    (line, promise) = ax.get_lines()
    assert list(line.get_ydata()) == [0.81, 0.60, 0.80]
    assert list(promise.get_ydata()) == [0.82, 0.82]  # read from the degraded entry
    (circled,) = ax.collections
    assert circled.get_offsets().shape == (1, 2)
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"v1", "at training", "degraded"}


def test_plot_evaluation_says_when_there_is_nothing_to_draw():
    ax = vis.plot_evaluation({"evaluations": []}, "roc_auc")

    assert ax.get_title() == "roc_auc: no evaluations yet"
