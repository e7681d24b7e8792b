"""Answer when a job ends: the seed's waiting GET aliases, and `Prefer: wait=N` on any submit.

The seed's `GET /predict` and `GET /model-registry` answered only once the work was done, and
their callers (schedulers, CI steps, `curl -f`) read the output right after. So these aliases
wait for the job and answer the seed's way: 200 `{status, message}` (+ `job_id`, `result`), or
the seed's error status (500) as problem+json naming the job, its state and the reason. Any
submit may ask the same with `Prefer: wait=N` (RFC 7240) and learns what was applied from
`Preference-Applied`.

Waiting blocks on the job engine's completion signal (`JobStore.wait`: a blocking Redis list
operation, no polling, no worker held) for at most MLSYS_SYNC_WAIT_SECONDS, which stays below
Cloud Run's and gunicorn's request timeouts; a job still running then answers 202 with its id
and `Location`, so nothing hangs. Each web process lets at most MLSYS_MAX_WAITING_REQUESTS
requests wait at once (default: half its gunicorn threads); past that a request answers 202 at
once, so waiting requests never take the threads that GET /jobs/{id} needs.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from flask import Response, current_app, g, jsonify, request, url_for
from pydantic import BaseModel, Field

from mlsys.jobs.model import Job
from mlsys.jobs.names import TERMINAL, JobState
from mlsys.resources import web_threads
from mlsys.settings import Settings
from web.backends import backends
from web.errors import problem

#: Waiting requests per process when the thread count is unknown (a dev server).
DEFAULT_WAITERS = 16

PREFER_HEADER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": "`wait=N` (RFC 7240): answer 200 with the finished job if it ends within N "
    "seconds (at most MLSYS_SYNC_WAIT_SECONDS), else 202 as usual. `Preference-Applied` says "
    "when the server waited.",
    "schema": {"type": "string", "example": "wait=30"},
}


class SeedAnswer(BaseModel):
    """The seed's answer once the job succeeded, plus the job's id and result."""

    status: str = Field(description='"success"')
    message: str
    job_id: str
    result: dict[str, Any] | None = None


#: Digits of `wait=N` read: more than this is a wait longer than any bound anyway.
_WAIT_DIGITS = 6


def preferred_wait() -> int | None:
    """The N of `Prefer: wait=N`, if the request states one (the first one wins). Parsed
    with a bounded length (a 5,000-digit N is simply "very long"), never raising."""
    for header in request.headers.getlist("Prefer"):
        for preference in header.split(","):
            token = preference.split(";", 1)[0]
            name, _, value = token.partition("=")
            value = value.strip().strip('"')
            if name.strip().lower() == "wait" and value.isascii() and value.isdigit():
                digits = value.lstrip("0") or "0"
                return int(digits) if len(digits) <= _WAIT_DIGITS else 10**_WAIT_DIGITS
    return None


def waiter_limit(settings: Settings) -> int:
    if settings.max_waiting_requests is not None:
        return settings.max_waiting_requests
    threads = web_threads()
    return max(1, threads // 2) if threads is not None else DEFAULT_WAITERS


def _slots(settings: Settings) -> threading.BoundedSemaphore:
    """This app's cap on waiting requests, sized on first use. Kept on the app, not the
    module: one gunicorn process serves one app, and apps built side by side in one process
    (tests, embedding) each get the cap their own settings ask for."""
    with _SLOTS_LOCK:
        slots = current_app.extensions.get(_SLOTS_KEY)
        if slots is None:
            slots = threading.BoundedSemaphore(waiter_limit(settings))
            current_app.extensions[_SLOTS_KEY] = slots
    return slots


_SLOTS_KEY = "mlsys_waiting_slots"
_SLOTS_LOCK = threading.Lock()


def _view(job: Any) -> dict[str, Any]:
    return job.model_dump(mode="json") if hasattr(job, "model_dump") else dict(job)


def _owner() -> str | None:
    from web.jobs import owner

    return owner()


def wait_capped(job_id: str, seconds: float) -> tuple[Job | None, bool]:
    """The one way a request waits for a job: the job once it ended or `seconds` passed, and
    whether this request did wait (False when every waiting slot of this process is taken:
    then it answers at once, so waiting requests never hold every thread)."""
    found = backends()
    slots = _slots(found.settings)
    if seconds <= 0 or not slots.acquire(blocking=False):
        return found.jobs.get(job_id, _owner()), False
    try:
        return found.jobs.wait(job_id, seconds, _owner()), True
    finally:
        slots.release()


def wait_for_job(job_id: str, seconds: float) -> tuple[dict[str, Any] | None, bool]:
    """`wait_capped`, with the job as its JSON view."""
    job, waited = wait_capped(job_id, seconds)
    return (_view(job) if job is not None else None), waited


def _ended(job: dict[str, Any] | None) -> bool:
    return job is not None and job["state"] in TERMINAL


def honour_prefer(response: Response) -> Response:
    """After a submit: with `Prefer: wait=N`, wait up to N seconds (bounded) for the job;
    200 with the job if it ended, else the submit's own answer."""
    wanted = preferred_wait()
    response.vary.add("Prefer")
    if wanted is None or response.status_code not in (200, 202):
        return response
    seconds = min(wanted, backends().settings.sync_wait_seconds)
    job, waited = wait_for_job(g.job_id, seconds)
    if not waited:
        return response
    applied = {"Preference-Applied": f"wait={seconds:g}", "Vary": "Prefer"}
    if not _ended(job):
        response.headers.update(applied)
        return response
    job_url = url_for("jobs.get_job", job_id=g.job_id)
    answer = jsonify({**job, "status_url": job_url})
    answer.headers.update(applied)
    answer.headers["Content-Location"] = job_url
    return answer


def seed_answer(response: Response, success_message) -> Response:
    """The seed's contract for its GET aliases: wait, then 200 {status, message}, the seed's
    error status with the reason, or 202 + Location past MLSYS_SYNC_WAIT_SECONDS."""
    if response.status_code not in (200, 202):
        return response
    bound = backends().settings.sync_wait_seconds
    wanted = preferred_wait()
    seconds = bound if wanted is None else min(wanted, bound)
    job, waited = wait_for_job(g.job_id, seconds)
    job_url = url_for("jobs.get_job", job_id=g.job_id)
    if job is not None and job["state"] == JobState.SUCCEEDED:
        body = {
            "status": "success",
            "message": success_message(job.get("result") or {}),
            "job_id": g.job_id,
            "result": job.get("result"),
        }
        answer = Response(json.dumps(body), status=200, mimetype="application/json")
        answer.headers["Content-Location"] = job_url
        return answer
    if _ended(job):
        error = job.get("error") or {}
        reason = error.get("message") or job["state"]
        return problem(
            500,
            "Job failed" if job["state"] == "failed" else "Job cancelled",
            f"Job {g.job_id} {job['state']}: {reason}",
            f"job-{job['state']}",
            headers={"Content-Location": job_url},
            job_id=g.job_id,
            state=job["state"],
            reason=reason,
            error_type=error.get("type"),
        )
    # Still queued or running: say where to follow it rather than hang.
    body = {
        "job_id": g.job_id,
        "status_url": job_url,
        "state": job["state"] if job else "queued",
        "message": f"Job {g.job_id} is still running after {seconds:g}s; follow it at {job_url}"
        if waited
        else f"Job {g.job_id} was queued; follow it at {job_url}",
    }
    answer = Response(json.dumps(body), status=202, mimetype="application/json")
    answer.headers.update({"Location": job_url, "Retry-After": "5"})
    return answer
