"""Request and response shapes of /evaluations and of a model version's evaluation history
(documented in /openapi.json; schedules take the same request)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mlsys.evaluation.spec import MAX_DAYS, MAX_KEY_COLUMNS
from web.schemas import (
    IDEMPOTENCY_KEY_PATTERN,
    ColumnName,
    ModelName,
    Strict,
    TableName,
    VersionRef,
)


class EvaluateRequest(Strict):
    """Evaluate the predictions in `output_table` against the outcomes in `labels_table`."""

    env: str = Field(description="Environment name (MLSYS_ENVIRONMENTS), e.g. dev.")
    output_table: TableName = Field(description="A table mlsys' predict jobs wrote.")
    labels_table: TableName = Field(description="The outcomes, one row per key.")
    key_columns: list[ColumnName] | None = Field(
        None,
        max_length=MAX_KEY_COLUMNS,
        description="Columns matching a prediction with its label (default: the columns both "
        "tables have, besides the label and mlsys' own).",
    )
    label_column: ColumnName | None = Field(
        None, description="The outcome column of labels_table (default: the prediction's name)."
    )
    prediction_column: ColumnName | None = Field(
        None, description="The prediction column of output_table (default: the model's target)."
    )
    model_name: ModelName | None = Field(None, description="Only this model's predictions.")
    model_version: VersionRef | None = Field(
        None, description="Only this version's (vN, latest or an alias; needs model_name)."
    )
    since: str | None = Field(
        None, description="Start of the window of prediction times (ISO date or time, UTC)."
    )
    until: str | None = Field(None, description="End of the window (default: now).")
    days: int | None = Field(
        None, ge=1, le=MAX_DAYS, description="Window length when since is not given (30)."
    )
    label_delay: str | int | None = Field(
        None,
        description="How long outcomes take to be known: predictions younger than this are "
        "left out (seconds, or e.g. 3d, 12h).",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Relative drop from a saved test_* metric that marks a day degraded "
        "(default: the version's evaluation_threshold, else 0.05).",
    )
    idempotency_key: str | None = Field(None, pattern=IDEMPOTENCY_KEY_PATTERN)


class EvaluationQuery(Strict):
    env: str = Field(description="Environment name (MLSYS_ENVIRONMENTS), e.g. dev.")
    limit: int = Field(1000, ge=1, le=10000, description="At most this many rows, the latest.")
    details: bool = Field(
        False, description="Include per-class metrics, confusion matrix and calibration."
    )


class MetricDrop(BaseModel):
    metric: str
    promised: float
    actual: float
    drop: float = Field(description="How much worse than promised, in the metric's units.")
    relative_drop: float = Field(description="drop / |promised|.")


class EvaluationDay(BaseModel):
    """One evaluate job's metrics of the version on one UTC day."""

    job_id: str
    model_name: str
    model_version: int
    day: str
    task: Literal["classification", "regression"] | None
    output_table: str | None
    labels_table: str | None
    rows: int | None
    matched: int | None
    unmatched: int | None
    accuracy: float | None = None
    roc_auc: float | None = None
    log_loss: float | None = None
    brier: float | None = None
    precision_macro: float | None = None
    recall_macro: float | None = None
    f1_macro: float | None = None
    mae: float | None = None
    rmse: float | None = None
    r2: float | None = None
    mape: float | None = None
    status: Literal["ok", "degraded", "too_few_rows", "no_promise"] | None
    degraded: list[MetricDrop]
    details: dict[str, Any] | None = None
    window_start: str | None
    window_end: str | None
    evaluated_at: str | None


class EvaluationHistory(BaseModel):
    """A model version's evaluations, day by day, oldest first."""

    env: str
    model_name: str
    model_version: str = Field(description="vN")
    evaluations: list[EvaluationDay]
