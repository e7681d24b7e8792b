"""Evaluation: were the predictions right, once the labels land?

Owns the join of an mlsys output table with a labels table on their key columns, the metrics
computed from it in the warehouse (per model name, version and UTC day, and for the whole
window of prediction times), the checks that refuse bad input before any work starts, the
comparison with the metrics a version was saved with, and the `evaluations` table that keeps
the history.
"""

from mlsys.evaluation.compute import compute_metrics
from mlsys.evaluation.metrics import GroupMetrics, flat_metrics
from mlsys.evaluation.sql import JoinSpec

__all__ = ["GroupMetrics", "JoinSpec", "compute_metrics", "flat_metrics"]
