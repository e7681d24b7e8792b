"""Metrics from the warehouse's small aggregates (pure: frames in, plain dicts out).

Each group is one model name and version, for one UTC day or (day None) the whole window.
Counts, sums and confusion matrices add up over days, so the window's are summed here; the
AUC and residual quantiles do not, so the warehouse computes them for the window too.

Conventions follow scikit-learn on the same rows: precision/recall/F1 macro-average the classes
seen in the group (as `unique_labels(y_true, y_pred)`) with 0 where a ratio is 0/0; R² is 1.0 for
a perfect fit of constant labels and 0.0 otherwise; binary models' positive class is the greater
of the two (sklearn's `classes_[1]`). MAPE leaves out rows whose label is 0 (their percentage
error is undefined) and reports how many it left out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from mlsys.evaluation.sql import CALIBRATION_BINS, QUANTILES, quantile_positions

EPOCH = date(1970, 1, 1)

#: Metrics where a higher value is better (the rest: lower is better).
HIGHER_IS_BETTER = frozenset(
    {"accuracy", "roc_auc", "precision_macro", "recall_macro", "f1_macro", "r2"}
)

GroupKey = tuple[str, str, int | None]


def day_text(day: int | None) -> str | None:
    """ISO date of a day number (days since 1970-01-01, UTC); None for the whole window."""
    return None if day is None else (EPOCH + timedelta(days=int(day))).isoformat()


@dataclass
class GroupMetrics:
    """The evaluation of one model version over one day (or the whole window)."""

    model_name: str
    model_version: str
    day: str | None
    task: str
    rows: int = 0
    matched: int = 0
    metrics: dict[str, float | None] = field(default_factory=dict)
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    confusion: dict[str, Any] | None = None
    calibration: dict[str, list[dict[str, Any]]] | None = None
    residual_quantiles: dict[str, float | None] | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def unmatched(self) -> int:
        return self.rows - self.matched

    def to_json(self) -> dict[str, Any]:
        data = {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "day": self.day,
            "task": self.task,
            "rows": self.rows,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "metrics": self.metrics,
        }
        for name in ("per_class", "confusion", "calibration", "residual_quantiles"):
            value = getattr(self, name)
            if value:
                data[name] = value
        if self.notes:
            data["notes"] = self.notes
        return data


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _day(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def class_order(counts: pd.DataFrame) -> list[str]:
    """Every class seen as a label or a prediction, as text, in the order of their values."""
    values: dict[str, Any] = {}
    for value, text in zip(
        list(counts["label"]) + list(counts["predicted"]),
        list(counts["label_text"]) + list(counts["predicted_text"]),
        strict=True,
    ):
        if text is not None and not pd.isna(text):
            values.setdefault(str(text), value)
    try:
        return sorted(values, key=lambda t: values[t])
    except TypeError:
        return sorted(values)


def _confusion_metrics(pairs: dict[tuple[str, str], int], order: list[str]) -> dict[str, Any]:
    """Accuracy, per-class and macro precision/recall/F1 and the confusion matrix of one group."""
    present = {c for pair in pairs for c in pair}
    classes = [c for c in order if c in present]
    total = sum(pairs.values())
    correct = sum(n for (label, predicted), n in pairs.items() if label == predicted)
    per_class: dict[str, dict[str, Any]] = {}
    for c in classes:
        tp = pairs.get((c, c), 0)
        predicted = sum(n for (_, p), n in pairs.items() if p == c)
        support = sum(n for (label, _), n in pairs.items() if label == c)
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = _ratio(2 * tp, predicted + support)
        per_class[c] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    macro = {
        f"{name}_macro": (sum(m[name] for m in per_class.values()) / len(classes))
        if classes
        else None
        for name in ("precision", "recall", "f1")
    }
    matrix = [[pairs.get((t, p), 0) for p in order] for t in order]
    return {
        "metrics": {"accuracy": _ratio(correct, total) if total else None, **macro},
        "per_class": per_class,
        "confusion": {"classes": order, "matrix": matrix},
    }


def classification_groups(
    counts: pd.DataFrame,
    sums: pd.DataFrame | None,
    ranks: pd.DataFrame | None,
    order: list[str],
    positive: str | None,
) -> list[GroupMetrics]:
    """Per-day and whole-window metrics of classifiers from the three queries' results
    (`sql.class_counts`, `sql.probability_sums`, `sql.rank_sums`)."""
    rows: dict[GroupKey, int] = defaultdict(int)
    pairs: dict[GroupKey, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for rec in counts.itertuples(index=False):
        for key in (
            (rec.model_name, rec.model_version, _day(rec.day)),
            (rec.model_name, rec.model_version, None),
        ):
            rows[key] += int(rec.n)
            if not pd.isna(rec.label_text) and not pd.isna(rec.predicted_text):
                pairs[key][(str(rec.label_text), str(rec.predicted_text))] += int(rec.n)
    probability = _probability_parts(sums) if sums is not None else {}
    aucs = _aucs(ranks) if ranks is not None else {}
    groups = []
    for key in sorted(rows, key=_sort_key):
        name, version, day = key
        group = GroupMetrics(name, version, day_text(day), "classification", rows=rows[key])
        group.matched = sum(pairs[key].values())
        found = _confusion_metrics(pairs[key], order)
        group.metrics, group.per_class, group.confusion = (
            found["metrics"],
            found["per_class"],
            found["confusion"],
        )
        parts = probability.get(key)
        if parts is not None:
            scored = parts["scored"]
            group.metrics["log_loss"] = parts["log_loss"] / scored if scored else None
            group.metrics["brier"] = parts["brier"] / scored if scored else None
            group.calibration = parts["calibration"]
        class_aucs = aucs.get(key)
        if class_aucs is not None:
            for c, auc in class_aucs.items():
                group.per_class.setdefault(c, {})["roc_auc"] = auc
            defined = [a for a in class_aucs.values() if a is not None]
            if positive is not None:
                group.metrics["roc_auc"] = class_aucs.get(positive)
            else:
                group.metrics["roc_auc"] = sum(defined) / len(defined) if defined else None
        groups.append(group)
    return groups


def _sort_key(key: GroupKey) -> tuple:
    name, version, day = key
    return (name, version_number(version) or -1, version, day is None, day or 0)


def version_number(version: str) -> int | None:
    """N of `vN` (how the output's ModelVersion names a version); None for anything else."""
    text = str(version).removeprefix("v")
    return int(text) if text.isdigit() else None


def _probability_parts(sums: pd.DataFrame) -> dict[GroupKey, dict[str, Any]]:
    """Log loss and Brier sums, scored rows and calibration bins per group (days summed into
    the window)."""
    parts: dict[GroupKey, dict[str, Any]] = {}
    bins: dict[GroupKey, dict[str, dict[int, list[float]]]] = {}
    for rec in sums.itertuples(index=False):
        for key in (
            (rec.model_name, rec.model_version, _day(rec.day)),
            (rec.model_name, rec.model_version, None),
        ):
            part = parts.setdefault(key, {"log_loss": 0.0, "brier": 0.0, "per_class_n": {}})
            part["log_loss"] += float(rec.log_loss_sum)
            part["brier"] += float(rec.brier_sum)
            cls = str(rec.cls)
            part["per_class_n"][cls] = part["per_class_n"].get(cls, 0) + int(rec.n)
            cell = (
                bins.setdefault(key, {}).setdefault(cls, {}).setdefault(int(rec.bin), [0, 0.0, 0])
            )
            cell[0] += int(rec.n)
            cell[1] += float(rec.score_sum)
            cell[2] += int(rec.positives)
    for key, part in parts.items():
        # Every scored class sees every matched prediction once: any class's count will do.
        part["scored"] = max(part.pop("per_class_n").values(), default=0)
        part["calibration"] = {
            cls: [
                {
                    "bin": b,
                    "lower": b / CALIBRATION_BINS,
                    "upper": (b + 1) / CALIBRATION_BINS,
                    "n": n,
                    "mean_predicted": score / n,
                    "fraction_positive": positives / n,
                }
                for b, (n, score, positives) in sorted(cells.items())
            ]
            for cls, cells in sorted(bins[key].items())
        }
    return parts


def _aucs(ranks: pd.DataFrame) -> dict[GroupKey, dict[str, float | None]]:
    found: dict[GroupKey, dict[str, float | None]] = defaultdict(dict)
    for rec in ranks.itertuples(index=False):
        key = (rec.model_name, rec.model_version, _day(rec.day))
        pos, neg = int(rec.positives), int(rec.negatives)
        found[key][str(rec.cls)] = float(rec.twice_u) / (2.0 * pos * neg) if pos and neg else None
    return found


def regression_groups(sums: pd.DataFrame) -> list[GroupMetrics]:
    """Per-day and whole-window metrics of regressors from `sql.regression_sums`."""
    groups = []
    positions = quantile_positions()
    records = sorted(
        sums.itertuples(index=False),
        key=lambda r: _sort_key((r.model_name, r.model_version, _day(r.day))),
    )
    for rec in records:
        day = _day(rec.day)
        group = GroupMetrics(
            rec.model_name, rec.model_version, day_text(day), "regression", rows=int(rec.n)
        )
        matched = group.matched = int(rec.matched)
        if not matched:
            group.metrics = dict.fromkeys(("mae", "rmse", "r2", "mape"), None)
            groups.append(group)
            continue
        sq_sum = float(rec.sq_sum)
        total = (_number(rec.label_var) or 0.0) * matched
        if total > 0:
            r2 = 1.0 - sq_sum / total
        else:
            r2 = 1.0 if sq_sum == 0 else 0.0
        ape_n = int(rec.ape_n)
        group.metrics = {
            "mae": float(rec.abs_sum) / matched,
            "rmse": math.sqrt(sq_sum / matched),
            "r2": r2,
            "mape": float(rec.ape_sum) / ape_n if ape_n else None,
            "mean_residual": float(rec.residual_sum) / matched,
        }
        group.notes["mape_zero_labels_left_out"] = matched - ape_n
        quantiles = _quantile_list(rec.residual_quantiles)
        if quantiles:
            group.residual_quantiles = {
                str(q): _number(quantiles[i]) for q, i in zip(QUANTILES, positions, strict=True)
            }
        groups.append(group)
    return groups


def _quantile_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    values = list(value)
    return values or None


def flat_metrics(groups: Iterable[GroupMetrics]) -> list[dict[str, Any]]:
    """One flat record per group (for tables and plots)."""
    return [
        {
            "model_name": g.model_name,
            "model_version": g.model_version,
            "day": g.day,
            "rows": g.rows,
            "matched": g.matched,
            **g.metrics,
        }
        for g in groups
    ]
