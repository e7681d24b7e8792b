"""Send the task that runs one unit of a job. Used by the web app, the tasks and the reaper."""

from __future__ import annotations

from celery import Celery

from mlsys.jobs import ALIAS, COMMIT, EVALUATE, PLAN, SYNC, shard_index
from mlsys.settings import get_settings
from worker.app import (
    ALIAS_TASK,
    COMMIT_TASK,
    EVALUATE_TASK,
    PLAN_TASK,
    QUEUE,
    SHARD_TASK,
    SYNC_TASK,
    celery_app,
)
from worker.fairness import route

_TASKS = {
    PLAN: PLAN_TASK,
    COMMIT: COMMIT_TASK,
    SYNC: SYNC_TASK,
    ALIAS: ALIAS_TASK,
    EVALUATE: EVALUATE_TASK,
}


def send_unit(
    job_id: str,
    unit: str,
    attempt: int = 1,
    countdown: float = 0,
    app: Celery | None = None,
    principal: str | None = None,
) -> None:
    """Enqueue `unit` ("plan", "shard:{k}", "commit", "sync", "alias") of a job for `attempt`:
    commits first, then shards, then plans in the lane of the job's `principal`
    (worker/fairness.py; a plan sent again without it goes to the lane of its job id)."""
    app = app or celery_app
    index = shard_index(unit)
    if index is not None:
        name, args = SHARD_TASK, [job_id, index, attempt]
    else:
        name, args = _TASKS[unit], [job_id, attempt]
    queue, priority = route(QUEUE, unit, principal or job_id, get_settings().fair_lanes)
    app.send_task(name, args=args, queue=queue, priority=priority, countdown=countdown or None)


def sender(app: Celery | None = None, principal: str | None = None):
    """`send_unit` bound to a Celery app (and the submitting principal), in the shape
    `JobStore.submit` takes."""
    return lambda job_id, unit, attempt: send_unit(
        job_id, unit, attempt, app=app, principal=principal
    )
