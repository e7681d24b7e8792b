"""Run an evaluation's queries and turn their aggregates into metrics.

Only aggregates leave the warehouse: a row per (group, label, prediction), per (group, class,
calibration bin) and per (group, class), so the worker's memory does not grow with the tables.
"""

from __future__ import annotations

from collections.abc import Callable

from mlsys.errors import Cancelled
from mlsys.evaluation import sql
from mlsys.evaluation.metrics import (
    GroupMetrics,
    class_order,
    classification_groups,
    regression_groups,
)
from mlsys.warehouse.base import Warehouse

#: Called after each query with (queries done, queries in all).
StepProgress = Callable[[int, int], None]


def _noop(done: int, total: int) -> None:
    return None


def compute_metrics(
    warehouse: Warehouse,
    join: sql.JoinSpec,
    task: str,
    progress: StepProgress = _noop,
    cancelled: Callable[[], bool] = lambda: False,
) -> list[GroupMetrics]:
    """Metrics per model version and day, and for the whole window (day None).

    Args:
        task: `classification` or `regression` (what the output table holds).
        progress: told after each warehouse query.
        cancelled: asked between queries; True stops with `Cancelled`.
    """
    if task == "regression":
        frame = warehouse.query(sql.regression_sums(join))
        progress(1, 1)
        return regression_groups(frame)
    steps = 3 if join.has_probability else 1
    counts = warehouse.query(sql.class_counts(join))
    progress(1, steps)
    order = class_order(counts)
    positive = order[-1] if len(order) == 2 else None
    sums = ranks = None
    if join.has_probability and len(order) >= 2:
        _check(cancelled)
        sums = warehouse.query(sql.probability_sums(join, order, positive))
        progress(2, steps)
        _check(cancelled)
        ranks = warehouse.query(sql.rank_sums(join, order, positive))
        progress(3, steps)
    return classification_groups(counts, sums, ranks, order, positive)


def _check(cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise Cancelled("The evaluation was cancelled.")
