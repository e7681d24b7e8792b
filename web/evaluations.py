"""POST /evaluations queues an evaluate job; GET .../evaluations reads a version's history.

Both tables of an evaluation are read, so both must be tables the caller may read (its input
or output datasets); the history shows only evaluations of such tables (admins see all).
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, Field

from mlsys.errors import PermissionDenied
from mlsys.evaluation.checks import check_schemas
from mlsys.evaluation.spec import MAX_DAYS, MAX_KEY_COLUMNS, EvaluateSpec
from mlsys.evaluation.store import read_evaluations
from mlsys.ids import ModelRef, TableId, check_model_name
from mlsys.jobs import JobKind
from mlsys.registry import resolve
from web.auth import allowed_dataset
from web.backends import backends
from web.errors import read_json_object
from web.openapi import IDEMPOTENCY_HEADER, doc
from web.policy import Access, Datasets, policy
from web.principal import Principal, Scope, current_principal
from web.schemas import (
    IDEMPOTENCY_KEY_PATTERN,
    MODEL_NAME_PATTERN,
    VERSION_PATTERN,
    ColumnName,
    JobAccepted,
    ModelName,
    Strict,
    TableName,
    VersionRef,
)
from web.submit import accepted, existing_job, idempotency_key, submit_job

bp = Blueprint("evaluations", __name__)


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


def may_read(table: TableId | str, principal: Principal) -> bool:
    """Whether the principal's jobs may read `table` (its input or output datasets)."""
    table = TableId.parse(str(table))
    return allowed_dataset(table, principal.input_datasets) or allowed_dataset(
        table, principal.output_datasets
    )


def authorize_evaluation(spec: EvaluateSpec, principal: Principal | None = None) -> None:
    """Refuse an evaluation of a table the caller may not read."""
    principal = principal or current_principal()
    for role, table in (("output_table", spec.output_table), ("labels_table", spec.labels_table)):
        if not may_read(table, principal):
            raise PermissionDenied(
                f"Principal {principal.name!r} may not read {table.project}.{table.dataset} "
                f"({role}).",
                hint="Evaluate tables in the principal's input or output datasets.",
            )


_ACCEPTED = {"job_id": "0f8e5c3a9b2d4e6f8a1b3c5d7e9f0a2b", "status_url": "/jobs/0f8e5c3a..."}


@bp.post("/evaluations")
@policy(Scope.PREDICT, datasets=Datasets.REQUEST, budget=True)
@doc(
    "Evaluate predictions against labels",
    tag="evaluations",
    body=EvaluateRequest,
    responses={202: JobAccepted, 200: JobAccepted},
    errors=(400, 403, 404, 409, 422, 429, 503),
    example=_ACCEPTED,
    headers=[IDEMPOTENCY_HEADER],
)
def submit_evaluation() -> Response:
    """Checks both tables (an output table mlsys wrote, key and label columns and their
    types), then queues an evaluate job and answers 202 with its id. The job joins the tables
    in the warehouse, computes the metrics per model version and UTC day, marks days that
    fall below the version's saved test_* metrics `degraded`, compares versions scored on the
    same keys, and stores the days in mlsys_{env}.evaluations. Duplicate label keys and a
    window without labelled predictions fail the job with a message saying so."""
    body = dict(EvaluateRequest.model_validate(read_json_object()))
    key = idempotency_key(body.pop("idempotency_key", None))
    found = backends()
    spec = EvaluateSpec.parse(settings=found.settings, **body)
    authorize_evaluation(spec)
    spec = spec.resolved()
    prepared = check_schemas(spec, found.warehouse)
    params = spec.to_json()
    job = existing_job(JobKind.EVALUATE, params, key)
    if job is not None:
        return accepted(job, created=False)
    steps = 3 if prepared.task == "classification" else 1
    return submit_job(JobKind.EVALUATE, params, rows_total=steps, key=key)


_HISTORY = {
    "env": "dev",
    "model_name": "titanic-survival",
    "model_version": "v1",
    "evaluations": [
        {
            "job_id": "0f8e5c3a9b2d4e6f8a1b3c5d7e9f0a2b",
            "model_name": "titanic-survival",
            "model_version": 1,
            "day": "2024-06-10",
            "task": "classification",
            "output_table": "mlsys-local.titanic.predictions",
            "labels_table": "mlsys-local.titanic.outcomes",
            "rows": 1000,
            "matched": 990,
            "unmatched": 10,
            "accuracy": 0.71,
            "roc_auc": 0.8,
            "status": "degraded",
            "degraded": [
                {
                    "metric": "accuracy",
                    "promised": 0.82,
                    "actual": 0.71,
                    "drop": 0.11,
                    "relative_drop": 0.134,
                }
            ],
            "window_start": "2024-06-01T00:00:00+00:00",
            "window_end": "2024-06-12T00:00:00+00:00",
            "evaluated_at": "2024-06-12T06:00:03+00:00",
        }
    ],
}


@bp.get("/models/<name>/versions/<version>/evaluations")
@policy(Access.SIGNED_IN)
@doc(
    "Evaluation history of a model version",
    tag="evaluations",
    query=EvaluationQuery,
    responses={200: EvaluationHistory},
    errors=(400, 403, 404, 503),
    example=_HISTORY,
    path_params={
        "name": {"schema": {"pattern": MODEL_NAME_PATTERN}, "example": "titanic-survival"},
        "version": {"schema": {"pattern": VERSION_PATTERN}, "example": "v1"},
    },
)
def model_evaluations(name: str, version: str) -> Response:
    """Metrics of `version` (vN, latest or an alias) of `name` per UTC day, from every evaluate
    job, oldest day first, each with its status against the version's saved test_* metrics.
    Only evaluations of tables the caller may read are shown (admins see all)."""
    query = EvaluationQuery.model_validate(request.args.to_dict())
    found = backends()
    entry = resolve(
        found.warehouse, found.settings, query.env, ModelRef.parse(check_model_name(name), version)
    )
    rows = read_evaluations(
        found.warehouse, found.settings, query.env, name, entry.model_version, query.details
    )
    principal = current_principal()
    if not principal.is_admin:
        rows = [
            r
            for r in rows
            if may_read(r["output_table"], principal) and may_read(r["labels_table"], principal)
        ]
    return jsonify(
        env=query.env,
        model_name=name,
        model_version=entry.version,
        evaluations=rows[-query.limit :],
    )
