"""An evaluation's result in a few lines a person reads first (the CLI, the dashboard)."""

from __future__ import annotations

from typing import Any


def summary_lines(result: dict[str, Any]) -> list[str]:
    """What a person reads first: each version's window, then the degraded days."""
    lines = []
    for version in result.get("versions") or []:
        window = version.get("window") or {}
        metrics = window.get("metrics") or {}
        shown = ", ".join(
            f"{name} {metrics[name]:.3f}"
            for name in ("accuracy", "roc_auc", "f1_macro", "mae", "rmse", "r2")
            if metrics.get(name) is not None
        )
        lines.append(
            f"{version['model_name']}/{version['model_version']}: "
            f"{window.get('matched', 0):,} of {window.get('rows', 0):,} predictions labelled"
            + (f"; {shown}" if shown else "")
            + f" ({window.get('status', 'no_promise')})"
        )
    for day in result.get("degraded_days") or []:
        drops = ", ".join(
            f"{d['metric']} {d['actual']:.3f} < promised {d['promised']:.3f} "
            f"(-{d['relative_drop']:.0%})"
            for d in day["degraded"]
        )
        lines.append(f"  DEGRADED {day['day']} {day['model_name']}/{day['model_version']}: {drops}")
    for pair in result.get("comparisons") or []:
        if pair.get("rows"):
            low, high = pair["ci95"]
            lines.append(
                f"  {pair['challenger']} vs {pair['champion']} on {pair['rows']:,} shared rows: "
                f"accuracy {pair['difference']:+.3f} (95% CI {low:+.3f} to {high:+.3f}): "
                f"{pair['better']}"
            )
    return lines
