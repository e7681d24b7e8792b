"""Send the task that runs one unit of a job. Used by the web app, the tasks and the reaper."""

from __future__ import annotations

from celery import Celery

from mlsys.jobs import ALIAS, COMMIT, PLAN, SYNC, shard_index
from worker.app import (
    ALIAS_TASK,
    COMMIT_TASK,
    PLAN_TASK,
    QUEUE,
    SHARD_TASK,
    SYNC_TASK,
    celery_app,
)

_TASKS = {PLAN: PLAN_TASK, COMMIT: COMMIT_TASK, SYNC: SYNC_TASK, ALIAS: ALIAS_TASK}


def send_unit(
    job_id: str, unit: str, attempt: int = 1, countdown: float = 0, app: Celery | None = None
) -> None:
    """Enqueue `unit` ("plan", "shard:{k}", "commit", "sync", "alias") of a job."""
    app = app or celery_app
    index = shard_index(unit)
    if index is not None:
        name, args = SHARD_TASK, [job_id, index, attempt]
    else:
        name, args = _TASKS[unit], [job_id, attempt]
    app.send_task(name, args=args, queue=QUEUE, countdown=countdown or None)


def sender(app: Celery | None = None):
    """`send_unit` bound to a Celery app, in the shape `JobStore.submit` takes."""
    return lambda job_id, unit, attempt: send_unit(job_id, unit, attempt, app=app)
