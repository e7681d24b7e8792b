"""Record a job and enqueue its first unit: the one path every submitting route takes."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Response, g, jsonify, request, url_for
from werkzeug.exceptions import MethodNotAllowed

from mlsys.errors import BackendUnavailable, InvalidRequest, JobConflict
from web.backends import backends
from web.metrics import job_submitted
from web.schemas import IDEMPOTENCY_KEY_PATTERN
from worker.dispatch import first_unit, send_unit

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


def existing_job(kind: str, params: dict[str, Any], key: str | None) -> dict[str, Any] | None:
    """The job first submitted with `key`, if any; refuses a key reused for another request."""
    if not key:
        return None
    job = backends().jobs.find_by_idempotency_key(key)
    if job is not None and (job["kind"] != kind or job["params"] != params):
        raise JobConflict(
            f"Idempotency key {key!r} was already used for a different request "
            f"(job {job['job_id']}).",
            hint="Use a new key for a new request.",
        )
    return job


def accepted(job: dict[str, Any], created: bool) -> Response:
    """202 + Location for a new job, 200 for an idempotent replay."""
    g.job_id = job["job_id"]
    status_url = url_for("jobs.get_job", job_id=job["job_id"])
    response = jsonify(job_id=job["job_id"], status_url=status_url)
    response.status_code = 202 if created else 200
    response.headers["Location"] = status_url
    return response


def submit_job(
    kind: str,
    params: dict[str, Any],
    *,
    rows_total: int | None = None,
    key: str | None = None,
    fields: dict[str, Any] | None = None,
) -> Response:
    """Create the job record, then send its first unit; undo the record if sending fails."""
    found = backends()
    job, created = found.jobs.create(kind, params, rows_total=rows_total, idempotency_key=key)
    if not created:
        existing_job(kind, params, key)  # raises if the key's job is another request
        return accepted(job, created=False)
    job_id = job["job_id"]
    unit = first_unit(kind)
    try:
        if fields:
            found.jobs.set_fields(job_id, **fields)
        found.jobs.init_units(job_id, [unit])
        send_unit(job_id, unit, app=found.celery)
    except Exception as error:
        log.error("could not enqueue job %s (%s): %s", job_id, kind, type(error).__name__)
        # A record without a message would sit queued forever: forget it, let the caller retry.
        found.jobs.delete(job_id)
        raise BackendUnavailable(
            "Could not queue the job: the broker is unavailable.", hint="Retry shortly."
        ) from None
    job_submitted(kind)
    log.info("job %s submitted (%s)", job_id, kind)
    return accepted(job, created=True)
