"""A model version's evaluation history: each metric per UTC day against the value the version
was saved with, degraded days marked. The same rows, and the same caller rule, as
GET /models/{name}/versions/{v}/evaluations."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from mlsys.evaluation.metrics import HIGHER_IS_BETTER
from mlsys.evaluation.store import read_evaluations
from mlsys.ids import ModelRef, check_model_name
from mlsys.registry import resolve
from web.backends import backends
from web.evaluations import readable_evaluations
from web.policy import Access, Owner, policy
from web.ui import data

bp = Blueprint("evaluations", __name__)

#: Metrics shown, in this order, where the rows have them.
SHOWN = ["accuracy", "roc_auc", "f1_macro", "log_loss", "brier", "mae", "rmse", "r2", "mape"]


def latest_per_day(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per day: the latest evaluation of it (rows come oldest evaluation first)."""
    days: dict[str, dict[str, Any]] = {}
    for row in rows:
        days[row["day"]] = row
    return [days[day] for day in sorted(days)]


def promised(rows: list[dict[str, Any]], metric: str) -> float | None:
    for row in reversed(rows):
        value = ((row.get("details") or {}).get("promise") or {}).get("promised", {}).get(metric)
        if value is not None:
            return float(value)
    return None


def metric_chart(rows: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """Points of `metric` per day for an inline SVG (x, y in 0-100), the promise as a line."""
    values = [(row["day"], row.get(metric), row) for row in rows if row.get(metric) is not None]
    if not values:
        return None
    promise = promised(rows, metric)
    numbers = [v for _, v, _ in values] + ([promise] if promise is not None else [])
    low, high = min(numbers), max(numbers)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    low, high = low - pad, high + pad

    def y(value: float) -> float:
        return round(100 - 100 * (value - low) / (high - low), 3)

    step = 100.0 / max(len(values) - 1, 1)
    points = [
        {
            "x": round(i * step if len(values) > 1 else 50.0, 3),
            "y": y(value),
            "day": day,
            "value": f"{value:.4g}",
            "degraded": any(d.get("metric") == metric for d in row.get("degraded") or []),
        }
        for i, (day, value, row) in enumerate(values)
    ]
    return {
        "metric": metric,
        "points": points,
        "line": " ".join(f"{p['x']},{p['y']}" for p in points),
        "promise": None if promise is None else {"y": y(promise), "value": f"{promise:.4g}"},
        "better": "higher" if metric in HIGHER_IS_BETTER else "lower",
        "low": f"{low + pad:.4g}",
        "high": f"{high - pad:.4g}",
    }


def history_view(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page (or a version page's section) shows of a version's evaluations."""
    days = latest_per_day(rows)
    metrics = [m for m in SHOWN if any(r.get(m) is not None for r in days)]
    charts = [c for c in (metric_chart(days, m) for m in metrics[:3]) if c is not None]
    return {
        "days": days,
        "metrics": metrics,
        "charts": charts,
        "degraded": sum(1 for r in days if r.get("status") == "degraded"),
    }


def _env() -> str:
    envs = data.environments()
    env = request.values.get("env") or envs[0]
    if env not in envs:
        abort(400, description=f"Unknown environment {env!r}: use one of {', '.join(envs)}.")
    return env


def version_history(env: str, name: str, version: str) -> tuple[str, dict[str, Any]]:
    """The version's `vN` and the view of the evaluations the caller may see."""
    found = backends()
    entry = resolve(
        found.warehouse, found.settings, env, ModelRef.parse(check_model_name(name), version)
    )
    rows = read_evaluations(
        found.warehouse, found.settings, env, entry.model_name, entry.model_version, details=True
    )
    return entry.version, history_view(readable_evaluations(rows))


@bp.get("/models/<name>/versions/<version>/evaluations")
@policy(Access.SIGNED_IN, owner=Owner.OWN_ROWS)
def history(name: str, version: str) -> str:
    """Each evaluated day of a model version: its metrics against the saved ones."""
    env = _env()
    pinned, view = version_history(env, name, version)
    return render_template(
        "ui/evaluations.html", active="models", env=env, name=name, version=pinned, **view
    )
