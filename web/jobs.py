"""Job status, listing and cancellation, from mlsys' own job records.

A caller sees only the jobs its principal submitted (an admin sees all); another principal's
job answers 404, as if it did not exist, so job ids leak nothing.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from mlsys.jobs import Job, JobPage
from web.backends import backends
from web.openapi import doc
from web.policy import Access, Owner, policy
from web.principal import current_principal
from web.schemas import JobsQuery

bp = Blueprint("jobs", __name__)

_JOB_ID = {"schema": {"maxLength": 128}, "example": "0f8e5c3a9b2d4e6f8a1b3c5d7e9f0a2b"}
_EXAMPLE = {
    "job_id": "0f8e5c3a9b2d4e6f8a1b3c5d7e9f0a2b",
    "kind": "predict",
    "state": "running",
    "phase": "predicting",
    "principal": "data-science",
    "progress": {"rows_done": 400000, "rows_total": 1000000, "percent": 40.0},
    "params": {
        "env": "dev",
        "input_table": "mlsys-local.titanic.passengers",
        "output_table": "mlsys-local.titanic.predictions",
        "model_name": "titanic-survival",
        "model_version": "latest",
        "id_columns": None,
        "write_disposition": "WRITE_APPEND",
        "shards": None,
    },
    "result": None,
    "error": None,
    "submitted_at": "2024-06-10T08:00:00.000+00:00",
    "started_at": "2024-06-10T08:00:01.250+00:00",
    "finished_at": None,
    "shards": [
        {"index": 0, "state": "running", "attempt": 1, "worker": "w1:4711", "rows_done": 400000}
    ],
}


def owner() -> str | None:
    """Whose jobs the caller may see: its own, or everyone's (None) for an admin."""
    principal = current_principal()
    return None if principal.is_admin else principal.name


def readable(rows: list[dict], key: str = "job_id") -> list[dict]:
    """Only the rows derived from jobs the caller may read (an admin: all of them), without
    their `principal`. Every read of job-derived data (monitoring history, statistics, charts)
    goes through this.

    A row names the principal that submitted its job, so it stays its owner's after the job's
    record expires; a row written before rows named one is decided by the job's record (gone:
    no one's but an admin's)."""
    principal = owner()
    if principal is not None:
        unnamed = sorted({row[key] for row in rows if row.get("principal") is None})
        theirs = backends().jobs.owned_by(unnamed, principal) if unnamed else set()
        rows = [
            row
            for row in rows
            if row.get("principal") == principal
            or (row.get("principal") is None and row[key] in theirs)
        ]
    # Who owns a row decides who reads it; it is not part of what is read.
    return [{k: v for k, v in row.items() if k != "principal"} for row in rows]


@bp.get("/jobs")
@policy(Access.SIGNED_IN, owner=Owner.OWN)
@doc(
    "List recent jobs",
    tag="jobs",
    query=JobsQuery,
    responses={200: JobPage},
    errors=(503,),
    example={"jobs": [_EXAMPLE], "next_page_token": "1718006400000000.0f8e5c3a9b2d4e6f"},
)
def list_jobs() -> Response:
    """The caller's jobs (an admin's: everyone's), most recent first, optionally only one state
    or kind; page on with `page_token` = the previous page's `next_page_token`."""
    query = JobsQuery.model_validate(request.args.to_dict())
    page = backends().jobs.page(owner(), query.state, query.kind, query.limit, query.page_token)
    return jsonify(page.model_dump(mode="json"))


@bp.get("/jobs/<job_id>")
@policy(Access.SIGNED_IN, owner=Owner.OWN)
@doc(
    "Get a job",
    tag="jobs",
    responses={200: Job},
    errors=(404, 503),
    example=_EXAMPLE,
    path_params={"job_id": _JOB_ID},
)
def get_job(job_id: str) -> Response:
    """State, progress, parameters, and the result or error once finished."""
    g.job_id = job_id
    return jsonify(backends().jobs.require(job_id, owner()).to_json())


@bp.delete("/jobs/<job_id>")
@policy(Access.SIGNED_IN, owner=Owner.OWN)
@doc(
    "Cancel a job",
    tag="jobs",
    responses={200: Job},
    errors=(404, 409, 503),
    example={**_EXAMPLE, "state": "cancelled", "phase": "cancelled"},
    path_params={"job_id": _JOB_ID},
)
def cancel_job(job_id: str) -> Response:
    """Cancels a queued or running job; it leaves no partial output. A finished job, or one
    already committing its output, answers 409."""
    g.job_id = job_id
    return jsonify(backends().jobs.cancel(job_id, owner()).to_json())
