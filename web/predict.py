"""POST /predict, and the seed's GET /predict alias: validate everything, then queue a job."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from mlsys.errors import MetadataPending
from mlsys.jobs import JobKind
from mlsys.predict import PredictSpec, prepare_predict
from web.auth import authorize_predict
from web.backends import backends
from web.errors import read_json_object
from web.openapi import IDEMPOTENCY_HEADER, doc
from web.policy import Datasets, policy
from web.principal import Scope
from web.schemas import JobAccepted, PredictQuery, PredictRequest
from web.submit import accepted, existing_job, idempotency_key, refuse_head, submit_job
from web.waiting import PREFER_HEADER, SeedAnswer, honour_prefer, seed_answer

bp = Blueprint("predict", __name__)

_ERRORS = (400, 403, 404, 409, 422, 429, 503)
_EXAMPLE = {"job_id": "0f8e5c3a9b2d4e6f8a1b3c5d7e9f0a2b", "status_url": "/jobs/0f8e5c3a..."}


def enqueue_predict(fields: dict[str, Any]) -> Response:
    """Check the request against the registry and the tables, then queue it."""
    key = idempotency_key(fields.pop("idempotency_key", None))
    found = backends()
    spec = PredictSpec.parse(settings=found.settings, **fields)
    authorize_predict(spec.input_table, spec.output_table, spec.write_disposition)
    params = spec.to_json()
    # A retry of a submitted job answers with that job, even if its output now exists.
    job = existing_job(JobKind.PREDICT, params, key)
    if job is not None:
        return accepted(job, created=False)
    try:
        prepared = prepare_predict(spec, found.warehouse, found.settings)
    except MetadataPending:
        # Registered without metadata.json: only a worker reads the model (after its hash
        # check), so the worker checks the input's columns; here only that it exists.
        rows = found.warehouse.count_rows(spec.input_table)
        return submit_job(JobKind.PREDICT, params, rows_total=rows, key=key)
    # `prepared` pins the model version resolved now: the worker runs exactly that one.
    return submit_job(
        JobKind.PREDICT,
        params,
        rows_total=prepared.rows_total,
        key=key,
        prepared=prepared,
    )


@bp.post("/predict")
@policy(Scope.PREDICT, datasets=Datasets.REQUEST, budget=True)
@doc(
    "Submit a batch prediction",
    tag="predict",
    body=PredictRequest,
    responses={202: JobAccepted, 200: JobAccepted},
    errors=_ERRORS,
    example=_EXAMPLE,
    headers=[IDEMPOTENCY_HEADER, PREFER_HEADER],
)
def submit_predict() -> Response:
    """Validates the tables, the model reference and the input's columns, then queues a job
    and answers 202 with its id at once. An idempotent retry answers 200 with the first job.
    With `Prefer: wait=N` it answers 200 with the job (as GET /jobs/{id}) once it ended within
    N seconds, and says so in `Preference-Applied`."""
    # dict(), not model_dump(): the parsed identifiers go on as they are.
    body = dict(PredictRequest.model_validate(read_json_object()))
    return honour_prefer(enqueue_predict(body))


@bp.get("/predict")
@policy(Scope.PREDICT, datasets=Datasets.REQUEST, budget=True, state_changing=True)
@doc(
    "Submit a batch prediction (seed-compatible query form)",
    tag="predict",
    query=PredictQuery,
    responses={202: JobAccepted, 200: SeedAnswer},
    errors=(*_ERRORS, 500),
    example=_EXAMPLE,
    headers=[IDEMPOTENCY_HEADER, PREFER_HEADER],
)
def submit_predict_query() -> Response:
    """The seed's GET /predict?env=&input_table=&output_table=&model_name=&model_version=,
    kept for existing callers with the seed's contract: it queues the same job as POST
    /predict and answers when the predictions are written (200 `{status, message}`), or 500
    naming the job and why it failed. A job still running after MLSYS_SYNC_WAIT_SECONDS
    answers 202 with its id and Location."""
    refuse_head()
    query = PredictQuery.model_validate(request.args.to_dict())
    return seed_answer(enqueue_predict(dict(query)), _predicted)


def _predicted(result: dict[str, Any]) -> str:
    return (
        f"Wrote {result.get('rows_written', 0)} predictions of {result.get('model', 'the model')}"
        f" to {result.get('output_table', 'the output table')}"
    )
