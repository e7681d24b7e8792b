"""Find units whose worker died and run them again elsewhere (one pass; the worker runs it in
a loop). Celery-free: the caller passes how to send a unit and how to drop a job's staging.

A running unit whose lease expired lost its worker: a kill -9, an OOM kill, a machine gone.
Its next attempt is dispatched, or the job fails once a unit has been lost MLSYS_MAX_ATTEMPTS
times (a poison input that crashes every worker must not loop forever). Attempts a stopping
worker gave back (worker/shutdown.py) do not count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from mlsys.jobs.model import JobRecord
from mlsys.jobs.names import COMMIT, JobState, shard_index, spent_attempts
from mlsys.jobs.store import JobStore, Send
from mlsys.settings import Settings

#: Drops a job's snapshot and staging: (job_id, env).
Discard = Callable[[str, str], None]


def reap_once(
    jobs: JobStore, settings: Settings, send: Send, discard: Discard | None = None
) -> list[str]:
    """One pass over the live jobs; returns what it did (for logs and tests)."""
    actions: list[str] = []
    for job_id in jobs.active_jobs():
        record = jobs.record(job_id)
        if record is None or record.state.terminal:
            jobs.forget_inactive(job_id)
            continue
        units = jobs.units(job_id)
        actions += _lost_units(jobs, settings, record, units, send, discard)
        actions += _stalled_commit(jobs, settings, record, units, send)
        actions += _never_started(jobs, settings, record, units, send)
    return actions


def _lost_units(jobs, settings, record: JobRecord, units, send, discard) -> list[str]:
    """Running units whose lease expired: dispatch the next attempt, or fail the job."""
    job_id = record.job_id
    for unit, state in sorted(units.items()):
        if state["state"] != "running" or jobs.lease_alive(job_id, unit):
            continue
        attempt, spent = int(state["attempt"]), spent_attempts(state)
        if spent >= settings.max_attempts:
            message = (
                f"{unit}: its worker was lost {spent} time(s); giving up "
                f"(MLSYS_MAX_ATTEMPTS={settings.max_attempts})."
            )
            if jobs.fail(job_id, message, error_type="WorkerLost") and discard:
                discard(job_id, record.params.get("env", ""))
            return [f"failed {job_id} {unit}"]
        jobs.requeue(job_id, unit, attempt + 1)
        send(job_id, unit, attempt + 1)
        return [f"redispatched {job_id} {unit} attempt {attempt + 1}"]
    return []


def _never_started(jobs, settings, record: JobRecord, units, send) -> list[str]:
    """A job recorded but never picked up for `5 x MLSYS_RECOVERY_TIMEOUT`: its first message may
    be lost (the API process died between recording it and sending it). Send it again; if the
    first message was only waiting in a long queue, whichever copy runs second finds the unit
    claimed or done and does nothing."""
    if record.state != JobState.QUEUED:
        return []
    first = record.kind.first_unit
    unit = units.get(first)
    if unit is None or unit["state"] != "queued":
        return []
    waited = time.time() - datetime.fromisoformat(record.submitted_at).timestamp()
    period = 5 * settings.recovery_timeout
    if waited < period or not jobs.once("resent", record.job_id, period):
        return []
    send(record.job_id, first, int(unit["attempt"]))
    return [f"resent {record.job_id} {first} after {waited:.0f}s queued"]


def _stalled_commit(jobs, settings, record: JobRecord, units, send) -> list[str]:
    """All shards done but the commit still queued a recovery timeout after that was first
    seen (its sender died after the last shard): send it again."""
    job_id = record.job_id
    shards = [u for name, u in units.items() if shard_index(name) is not None]
    commit = units.get(COMMIT)
    if not shards or commit is None or commit["state"] != "queued":
        return []
    if record.shards_total and len(shards) < record.shards_total:
        return []
    if any(u["state"] != "done" for u in shards) or jobs.lease_alive(job_id, COMMIT):
        return []
    timeout = settings.recovery_timeout
    if time.time() - jobs.first_seen("commit-wait", job_id, 10 * timeout) < timeout:
        return []  # give the commit message time to arrive
    send(job_id, COMMIT, int(commit["attempt"]))
    jobs.forget_seen("commit-wait", job_id)
    return [f"redispatched {job_id} commit"]
