"""Record a job and enqueue its first unit: the one path every submitting route takes."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Response, g, jsonify, request, url_for
from werkzeug.exceptions import MethodNotAllowed

from mlsys.errors import InvalidRequest, JobConflict
from mlsys.jobs import Job, JobKind, NewJob
from mlsys.predict import PreparedPredict
from web.backends import backends
from web.metrics import job_submitted
from web.principal import current_principal
from web.schemas import IDEMPOTENCY_KEY_PATTERN
from worker.dispatch import sender

log = logging.getLogger(__name__)


def refuse_head() -> None:
    """HEAD must not queue work; werkzeug adds it to every GET route, the seed's
    job-submitting GET aliases included."""
    if request.method == "HEAD":
        raise MethodNotAllowed(valid_methods=["GET", "POST"])


def idempotency_key(from_body: str | None) -> str | None:
    """The key from the body/query or the Idempotency-Key header (they must agree)."""
    header = request.headers.get("Idempotency-Key")
    if header is not None and not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, header):
        raise InvalidRequest(
            "Invalid Idempotency-Key header.",
            hint="Use 1-128 characters of letters, digits, '.', '_', ':' and '-'.",
        )
    if header and from_body and header != from_body:
        raise InvalidRequest(
            "The Idempotency-Key header and idempotency_key differ.",
            hint="Send the key once, or the same key in both.",
        )
    return from_body or header or None


def existing_job(kind: JobKind, params: dict[str, Any], key: str | None) -> Job | None:
    """The job the caller first submitted with `key`, if any; refuses a key reused for another
    request. Keys are the caller's own: another principal's key is a different key."""
    if not key:
        return None
    job = backends().jobs.find_by_idempotency_key(current_principal().name, key)
    if job is not None and (job.kind != kind or job.params != params):
        raise JobConflict(
            f"Idempotency key {key!r} was already used for a different request (job {job.job_id}).",
            hint="Use a new key for a new request.",
        )
    return job


def accepted(job: Job, created: bool) -> Response:
    """202 + Location for a new job, 200 for an idempotent replay."""
    g.job_id = job.job_id
    status_url = url_for("jobs.get_job", job_id=job.job_id)
    response = jsonify(job_id=job.job_id, status_url=status_url)
    response.status_code = 202 if created else 200
    response.headers["Location"] = status_url
    return response


def submit_job(
    kind: JobKind,
    params: dict[str, Any],
    *,
    rows_total: int | None = None,
    key: str | None = None,
    prepared: PreparedPredict | None = None,
) -> Response:
    """Record the job as the caller's and send its first unit (the job engine forgets the
    record if sending fails, and answers 503). A predict job records its `prepared` (the
    pinned model and output schema) for its workers."""
    found = backends()
    recorded = prepared.to_json() if prepared is not None else None
    new = NewJob(kind, params, current_principal().name, rows_total, key, recorded)
    job, created = found.jobs.submit(new, sender(found.celery, new.principal))
    if created:
        job_submitted(kind)
        log.info("job %s submitted (%s)", job.job_id, kind)
    return accepted(job, created)
