"""Plotting helpers for notebooks and reports.

Each plot takes an optional `ax`, draws on it (or on a new figure) and returns the Axes; the
Figure is `ax.figure`. Nothing here calls `plt.show()` or picks a backend: that is the caller's
business (notebooks display figures themselves; scripts and tests use Agg).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import ConfusionMatrixDisplay, auc, brier_score_loss, roc_curve

# Okabe-Ito: distinguishable by colour-blind readers and in greyscale print.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MISSING_LABEL = "(missing)"


def set_style(font_scale: float = 1.0) -> None:
    """Set a clean matplotlib style for notebooks and reports (affects later figures only).

    Args:
        font_scale: multiplies the base font size (e.g. 1.3 for slides).
    """
    size = 10 * font_scale
    plt.rcParams.update(
        {
            "figure.figsize": (7.0, 4.5),
            "figure.dpi": 100,
            "figure.autolayout": True,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "font.size": size,
            "axes.titlesize": size * 1.2,
            "axes.labelsize": size,
            "xtick.labelsize": size * 0.9,
            "ytick.labelsize": size * 0.9,
            "legend.fontsize": size * 0.9,
            "legend.frameon": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "grid.linestyle": "-",
            "axes.axisbelow": True,
            "axes.prop_cycle": plt.cycler(color=PALETTE),
            "image.cmap": "Blues",
        }
    )


def setup_plot_style(font_scale: float = 1.0) -> None:
    """The seed's name for `set_style`: `from mlsys.vis import setup_plot_style` keeps working."""
    set_style(font_scale)


def _axes(ax: Axes | None) -> Axes:
    return ax if ax is not None else plt.subplots()[1]


def _binary(y_true, proba) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=float)
    keep = ~np.isnan(p)
    if len(np.unique(y[keep])) != 2:
        raise ValueError("This plot needs binary y_true with both classes present.")
    return y[keep], p[keep]


def positive_probability(predicted, probability, positive: object = 1) -> np.ndarray:
    """P(class `positive`) from mlsys' output, whose PredictionProbability is that of the
    *predicted* class (binary classifiers only).

    Args:
        predicted: the target column of the predictions table (the predicted class).
        probability: its `PredictionProbability` column.
        positive: the class whose probability you want (default 1).
    """
    predicted = np.asarray(predicted)
    probability = np.asarray(probability, dtype=float)
    return np.where(predicted == positive, probability, 1.0 - probability)


def plot_rate_by(
    df: pd.DataFrame, column: str, target: str = "Survived", ax: Axes | None = None
) -> Axes:
    """Bar chart of the mean of a 0/1 `target` per value of `column` (missing values shown too),
    with each bar's row count and the overall rate as a dashed line."""
    ax = _axes(ax)
    stats = df[target].groupby(df[column], sort=True).agg(["mean", "size"])
    missing = df.loc[df[column].isna(), target]
    if len(missing):
        stats.loc[MISSING_LABEL] = [missing.mean(), len(missing)]
    bars = ax.bar([str(k) for k in stats.index], stats["mean"], color=PALETTE[0])
    ax.bar_label(bars, labels=[f"n={int(n):,}" for n in stats["size"]], padding=2, fontsize="small")
    ax.axhline(df[target].mean(), color="grey", linestyle="--", linewidth=1, label="overall")
    ax.set(xlabel=column, ylabel=f"{target} rate", ylim=(0, 1.05), title=f"{target} by {column}")
    ax.legend(loc="upper right")
    return ax


def plot_distribution_by_class(
    df: pd.DataFrame,
    column: str,
    target: str = "Survived",
    bins: int = 30,
    ax: Axes | None = None,
) -> Axes:
    """Overlaid density histograms of a numeric `column`, one per class of `target`."""
    ax = _axes(ax)
    values = df[column].dropna()
    edges = np.histogram_bin_edges(values, bins=bins)
    for klass in sorted(df[target].dropna().unique()):
        part = df.loc[(df[target] == klass) & df[column].notna(), column]
        ax.hist(part, bins=edges, density=True, alpha=0.45, label=f"{target}={klass}")
    ax.set(xlabel=column, ylabel="density", title=f"{column} by {target}")
    ax.legend()
    return ax


def plot_prediction_distribution(
    proba, y_true=None, bins: int = 20, ax: Axes | None = None
) -> Axes:
    """Histogram of predicted probabilities, split by true class when `y_true` is given."""
    ax = _axes(ax)
    p = np.asarray(proba, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    if y_true is None:
        ax.hist(p[~np.isnan(p)], bins=edges)
    else:
        y = np.asarray(y_true)
        for klass in np.unique(y):
            part = p[(y == klass) & ~np.isnan(p)]
            ax.hist(part, bins=edges, alpha=0.5, label=f"true class {klass}")
        ax.legend()
    ax.set(xlabel="predicted probability", ylabel="rows", title="Prediction distribution")
    return ax


def plot_calibration(
    y_true, proba, n_bins: int = 10, label: str = "model", ax: Axes | None = None
) -> Axes:
    """Reliability diagram: observed rate of class 1 against mean P(class 1) per bin.

    Args:
        proba: P(class 1); from an mlsys predictions table use `positive_probability`.
        n_bins: equal-width probability bins (empty bins are skipped).
    """
    ax = _axes(ax)
    y, p = _binary(y_true, proba)
    observed, predicted = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    brier = brier_score_loss(y, p)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label=f"{label} (Brier = {brier:.3f})")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed fraction of positives",
        xlim=(0, 1),
        ylim=(0, 1),
        title="Calibration",
    )
    ax.legend(loc="upper left")
    return ax


def plot_roc(y_true, proba, label: str = "model", ax: Axes | None = None) -> Axes:
    """ROC curve of P(class 1) against the true classes, with the AUC in the legend."""
    ax = _axes(ax)
    y, p = _binary(y_true, proba)
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    ax.plot(fpr, tpr, label=f"{label} (AUC = {auc(fpr, tpr):.3f})")
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title="ROC curve",
    )
    ax.legend(loc="lower right")
    return ax


def plot_confusion_matrix(
    y_true,
    y_pred,
    labels: Sequence | None = None,
    normalize: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Confusion matrix with counts (or rates) in the cells; rows are the true classes.

    Args:
        normalize: None (counts), "true" (rows sum to 1), "pred" or "all".
    """
    ax = _axes(ax)
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=labels,
        normalize=normalize,
        ax=ax,
        colorbar=False,
        cmap="Blues",
        values_format=".2f" if normalize else ",d",
    )
    ax.grid(False)
    ax.set_title("Confusion matrix")
    return ax


def feature_importance(
    model, X: pd.DataFrame | None = None, y=None, n_repeats: int = 5, random_state: int = 0
) -> pd.Series:
    """Importances of a fitted model or Pipeline, largest first.

    With `X` and `y`: permutation importance of each *input* column (mean drop in the model's
    score; slower, model-agnostic). Without: the final estimator's `feature_importances_` (or
    |coef_|), named by the preceding steps' `get_feature_names_out()` (e.g. the
    ColumnTransformer's `categorical__Sex_male`).
    """
    if X is not None:
        if y is None:
            raise ValueError("Permutation importance needs y as well as X.")
        result = permutation_importance(model, X, y, n_repeats=n_repeats, random_state=random_state)
        series = pd.Series(result.importances_mean, index=list(X.columns))
        return series.sort_values(ascending=False)
    estimator = model[-1] if hasattr(model, "steps") else model
    if hasattr(estimator, "feature_importances_"):
        values = np.asarray(estimator.feature_importances_, dtype=float)
    elif hasattr(estimator, "coef_"):
        values = np.abs(np.atleast_2d(estimator.coef_)).mean(axis=0)
    else:
        raise ValueError(
            f"{type(estimator).__name__} has neither feature_importances_ nor coef_; "
            "pass X and y for permutation importance."
        )
    if hasattr(model, "steps") and len(model.steps) > 1:
        names = model[:-1].get_feature_names_out()
    else:
        names = getattr(estimator, "feature_names_in_", None)
    if names is None or len(names) != len(values):
        names = [f"x{i}" for i in range(len(values))]
    return pd.Series(values, index=[str(n) for n in names]).sort_values(ascending=False)


def plot_feature_importance(
    model,
    X: pd.DataFrame | None = None,
    y=None,
    top: int = 20,
    ax: Axes | None = None,
) -> Axes:
    """Horizontal bars of the `top` importances from `feature_importance` (largest on top)."""
    ax = _axes(ax)
    series = feature_importance(model, X, y).head(top).iloc[::-1]
    ax.barh(series.index, series.to_numpy(), color=PALETTE[0])
    if X is not None:
        ax.set(xlabel="permutation importance (score drop)", title="Permutation importance")
    else:
        ax.set(xlabel="importance", title="Feature importance (model)")
    ax.grid(axis="y", visible=False)
    return ax


def drift_frame(history) -> pd.DataFrame:
    """One row per (job, feature) from a monitoring history: the `jobs` of
    GET /models/{name}/versions/{v}/monitoring (or that whole answer), or
    `mlsys.monitoring.stats.history(...)`."""
    jobs = history.get("jobs", []) if isinstance(history, dict) else list(history)
    rows = [
        {"job": n, "job_id": job["job_id"], **feature}
        for n, job in enumerate(jobs)
        for feature in job["features"]
    ]
    return pd.DataFrame(rows)


def plot_drift(
    history,
    metric: str = "psi",
    thresholds: tuple[float, float] | None = (0.1, 0.25),
    features: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """A drift metric per feature over a model version's jobs (oldest left), with the warn and
    alert thresholds as dashed lines.

    Args:
        history: see `drift_frame`.
        metric: psi, null_rate_change or unseen_rate.
        features: which to draw (default: every feature with a value).
    """
    ax = _axes(ax)
    frame = drift_frame(history)
    if frame.empty or metric not in frame:
        ax.set_title(f"{metric}: no monitored jobs yet")
        return ax
    table = frame.pivot_table(index="job", columns="feature", values=metric, aggfunc="first")
    table = table.dropna(axis=1, how="all")
    for name in features or list(table.columns):
        if name in table:
            ax.plot(table.index, table[name], marker="o", label=name)
    if thresholds:
        for value, label, colour in zip(thresholds, ("warn", "alert"), PALETTE[1::2], strict=False):
            ax.axhline(value, linestyle="--", color=colour, linewidth=1, label=label)
    ax.set_xlabel("job (oldest first)")
    ax.set_ylabel(metric)
    ax.set_xticks(list(table.index))
    ax.set_title(f"Drift vs. training data: {metric}")
    ax.legend(loc="upper left", ncol=2)
    return ax


def evaluation_frame(history) -> pd.DataFrame:
    """One row per (model version, UTC day) from an evaluation history: the `evaluations` of
    GET /models/{name}/versions/{v}/evaluations (or that whole answer), or
    `mlsys.evaluation.store.read_evaluations(...)`. A day evaluated more than once keeps its
    latest evaluation."""
    rows = history.get("evaluations", []) if isinstance(history, dict) else list(history)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["day"] = pd.to_datetime(frame["day"])
    if "evaluated_at" in frame:
        frame = frame.sort_values("evaluated_at")
    return (
        frame.drop_duplicates(["model_version", "day"], keep="last")
        .sort_values(["model_version", "day"])
        .reset_index(drop=True)
    )


def _promised(frame: pd.DataFrame, metric: str) -> float | None:
    """The version's saved value of `metric`, from the rows' details or degraded entries."""
    for details in frame.get("details", pd.Series(dtype=object)).dropna():
        value = ((details or {}).get("promise") or {}).get("promised", {}).get(metric)
        if value is not None:
            return float(value)
    for drops in frame.get("degraded", pd.Series(dtype=object)).dropna():
        for drop in drops:
            if drop.get("metric") == metric:
                return float(drop["promised"])
    return None


def plot_evaluation(
    history, metric: str = "accuracy", promised: float | None = None, ax: Axes | None = None
) -> Axes:
    """A metric of a model version per UTC day, against the value it was saved with (dashed),
    with the days marked `degraded` circled in red.

    Args:
        history: see `evaluation_frame`.
        metric: accuracy, roc_auc, log_loss, brier, f1_macro, mae, rmse, r2, mape, ...
        promised: the training value to draw (default: read from the history's details).
    """
    ax = _axes(ax)
    frame = evaluation_frame(history)
    if frame.empty or metric not in frame or frame[metric].isna().all():
        ax.set_title(f"{metric}: no evaluations yet")
        return ax
    for version, part in frame.groupby("model_version"):
        ax.plot(part["day"], part[metric], marker="o", label=f"v{version}")
    bad = frame[frame["status"] == "degraded"] if "status" in frame else frame.iloc[:0]
    bad = bad[bad["degraded"].map(lambda d: any(x.get("metric") == metric for x in d or []))]
    if len(bad):
        ax.scatter(
            bad["day"], bad[metric], s=160, facecolors="none", edgecolors=PALETTE[3],
            linewidths=2, label="degraded", zorder=3,
        )  # fmt: skip
    promised = promised if promised is not None else _promised(frame, metric)
    if promised is not None:
        ax.axhline(promised, linestyle="--", color="grey", linewidth=1, label="at training")
    ax.set_xlabel("day of the predictions (UTC)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} once the labels landed")
    ax.legend(loc="best")
    ax.figure.autofmt_xdate()
    return ax
