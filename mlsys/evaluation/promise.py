"""Against the promise: each day's metrics beside the ones the version was saved with.

A version's promise is every numeric `test_*` entry of its metadata (the seed's
`test_accuracy`, `test_roc_auc`) and every numeric entry of its `metrics` (what
`mlsys.artifacts.save_model(metrics=...)` records), named as the evaluation names them
(`test_auc` and `auc` are `roc_auc`, `f1` is `f1_macro`, ...).

A metric is *degraded* when it is worse than promised by more than the threshold, relative to
the promise: `(promised - actual) / |promised|` for metrics where higher is better, the other
way round for losses and errors. The threshold is the request's `threshold`, else the version's
metadata `evaluation_threshold`, else DEFAULT_THRESHOLD (5%). Days with fewer than MIN_MATCHED
labelled predictions are too noisy to judge and are never marked degraded.

Champion and challenger: two versions that scored the same keys on the same day are compared
pair by pair (McNemar's table): how often each alone was right, and a 95% confidence interval
of the difference in accuracy (Wald, for paired proportions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mlsys.evaluation.metrics import HIGHER_IS_BETTER, GroupMetrics

DEFAULT_THRESHOLD = 0.05
MIN_MATCHED = 30
Z_95 = 1.959963984540054

_ALIASES = {
    "auc": "roc_auc",
    "f1": "f1_macro",
    "precision": "precision_macro",
    "recall": "recall_macro",
    "brier_score": "brier",
    "logloss": "log_loss",
    "r2_score": "r2",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def promised_metrics(metadata: Mapping[str, Any] | None) -> dict[str, float]:
    """The metrics a version was saved with, by the evaluation's names."""
    metadata = metadata or {}
    found: dict[str, float] = {}
    metrics = metadata.get("metrics")
    sources = [metrics.items() if isinstance(metrics, Mapping) else []]
    sources.append((k, v) for k, v in metadata.items() if str(k).startswith("test_"))
    for items in sources:
        for key, value in items:
            if _is_number(value):
                name = str(key).removeprefix("test_")
                found[_ALIASES.get(name, name)] = float(value)
    return found


def threshold_of(metadata: Mapping[str, Any] | None, requested: float | None) -> float:
    """The request's threshold, else the version's `evaluation_threshold`, else the default."""
    if requested is not None:
        return requested
    saved = (metadata or {}).get("evaluation_threshold")
    return float(saved) if _is_number(saved) and 0 < saved < 1 else DEFAULT_THRESHOLD


def judge(group: GroupMetrics, promised: Mapping[str, float], threshold: float) -> dict[str, Any]:
    """Status of one group against its promise: `ok`, `degraded` (with the metrics that fell,
    and by how much), `too_few_rows` or `no_promise`."""
    compared, drops = [], []
    for name, promise in sorted(promised.items()):
        actual = group.metrics.get(name)
        if actual is None or promise == 0:
            continue
        worse = promise - actual if name in HIGHER_IS_BETTER else actual - promise
        compared.append(name)
        relative = worse / abs(promise)
        if relative > threshold:
            drops.append(
                {
                    "metric": name,
                    "promised": promise,
                    "actual": actual,
                    "drop": worse,
                    "relative_drop": relative,
                }
            )
    if not compared:
        status = "no_promise"
    elif group.matched < MIN_MATCHED:
        status, drops = "too_few_rows", []
    else:
        status = "degraded" if drops else "ok"
    return {
        "status": status,
        "threshold": threshold,
        "promised": {k: promised[k] for k in compared},
        "degraded": drops,
    }


def paired_comparison(
    champion: str, challenger: str, both: int, champion_only: int, challenger_only: int, n: int
) -> dict[str, Any]:
    """Which of two versions was right more often on the same rows, with a 95% CI of the
    difference in accuracy (challenger - champion)."""
    if not n:
        return {"champion": champion, "challenger": challenger, "rows": 0}
    difference = (challenger_only - champion_only) / n
    variance = (challenger_only + champion_only) / n**2 - (
        challenger_only - champion_only
    ) ** 2 / n**3
    half = Z_95 * math.sqrt(max(variance, 0.0))
    low, high = difference - half, difference + half
    if low > 0:
        verdict = "challenger"
    elif high < 0:
        verdict = "champion"
    else:
        verdict = "no_difference"
    return {
        "champion": champion,
        "challenger": challenger,
        "rows": n,
        "both_right": both,
        "champion_only_right": champion_only,
        "challenger_only_right": challenger_only,
        "champion_accuracy": (both + champion_only) / n,
        "challenger_accuracy": (both + challenger_only) / n,
        "difference": difference,
        "ci95": [low, high],
        "better": verdict,
    }
