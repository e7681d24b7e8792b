"""POST /evaluations queues an evaluate job; GET .../evaluations reads a version's history.

Both tables of an evaluation are read, so both must be tables the caller may read (its input
or output datasets); the history shows only the caller's own evaluations of such tables
(admins see all), as every job-derived read does.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from mlsys.access.datasets import check_evaluation, may_read
from mlsys.evaluation.checks import check_schemas
from mlsys.evaluation.spec import EvaluateSpec
from mlsys.evaluation.store import read_evaluations
from mlsys.ids import ModelRef, check_model_name
from mlsys.jobs import JobKind
from mlsys.registry import resolve
from web.backends import backends
from web.errors import read_json_object
from web.evaluation_schemas import EvaluateRequest, EvaluationHistory, EvaluationQuery
from web.jobs import readable
from web.openapi import IDEMPOTENCY_HEADER, doc
from web.policy import Access, Datasets, Owner, policy
from web.principal import Principal, Scope, current_principal
from web.schemas import MODEL_NAME_PATTERN, VERSION_PATTERN, JobAccepted
from web.submit import accepted, existing_job, idempotency_key, submit_job

bp = Blueprint("evaluations", __name__)


def readable_evaluations(
    rows: list[dict[str, Any]], principal: Principal | None = None
) -> list[dict[str, Any]]:
    """Only evaluations the caller's own jobs made, of tables it may read (an admin: all)."""
    principal = principal or current_principal()
    if not principal.is_admin:
        rows = [
            r
            for r in rows
            if may_read(r["output_table"], principal) and may_read(r["labels_table"], principal)
        ]
    # Like every job-derived read: another principal's evaluations (and job ids) stay private.
    return readable(rows)


def authorize_evaluation(spec: EvaluateSpec, principal: Principal | None = None) -> None:
    """Refuse an evaluation of a table the caller may not read (mlsys.access.check_evaluation).

    Raises:
        PermissionDenied: either table is outside the principal's input and output datasets.
    """
    check_evaluation(spec.output_table, spec.labels_table, principal or current_principal())


_ACCEPTED = {"job_id": "0f8e5c3a9b2d4e6f8a1b3c5d7e9f0a2b", "status_url": "/jobs/0f8e5c3a..."}


def _as_first_asked(spec: EvaluateSpec, key: str | None) -> dict[str, Any]:
    """The request's parameters as the job first submitted with `key` recorded them: the
    window it fixed then stands in for a window this request leaves open."""
    asked = spec.to_json()
    first = backends().jobs.find_by_idempotency_key(current_principal().name, key) if key else None
    if first is None or first.kind != JobKind.EVALUATE:
        return asked
    return asked | {
        field: first.params.get(field) for field in ("since", "until") if asked[field] is None
    }


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
    """Checks both tables' schemas (an output table mlsys wrote, key and label columns and
    their types), then queues an evaluate job and answers 202 with its id. The job refuses
    duplicate label keys and a window without labelled predictions (it fails, saying so), joins
    the tables in the warehouse, computes the metrics per model version and UTC day, marks
    days that fall below the version's saved test_* metrics `degraded`, compares versions
    scored on the same keys, and stores the days in mlsys_{env}.evaluations."""
    body = dict(EvaluateRequest.model_validate(read_json_object()))
    key = idempotency_key(body.pop("idempotency_key", None))
    found = backends()
    spec = EvaluateSpec.parse(settings=found.settings, **body)
    authorize_evaluation(spec)
    # A retry answers with the first job, whose window was fixed when it was accepted.
    job = existing_job(JobKind.EVALUATE, _as_first_asked(spec, key), key)
    if job is not None:
        return accepted(job, created=False)
    spec = spec.resolved()
    # Metadata only: the API's account reads no table data (infra/permissions.toml). The job
    # scans for duplicate label keys and labelled predictions before it counts.
    prepared = check_schemas(spec, found.warehouse)
    params = spec.to_json()
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
@policy(Access.SIGNED_IN, owner=Owner.OWN_ROWS)
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
    Only evaluations the caller's jobs made, of tables it may read, are shown (admins see
    all)."""
    query = EvaluationQuery.model_validate(request.args.to_dict())
    found = backends()
    entry = resolve(
        found.warehouse, found.settings, query.env, ModelRef.parse(check_model_name(name), version)
    )
    rows = read_evaluations(
        found.warehouse, found.settings, query.env, name, entry.model_version, query.details
    )
    rows = readable_evaluations(rows)
    return jsonify(
        env=query.env,
        model_name=name,
        model_version=entry.version,
        evaluations=rows[-query.limit :],
    )
