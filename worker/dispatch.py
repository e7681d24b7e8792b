"""Send the task that runs one unit of a job. Used by the web app, the tasks and the reaper."""

from __future__ import annotations

from celery import Celery

from worker.app import COMMIT, PLAN, QUEUE, SHARD, SYNC, celery_app


def send_unit(
    job_id: str, unit: str, attempt: int = 1, countdown: float = 0, app: Celery | None = None
) -> None:
    """Enqueue `unit` ("plan", "shard:{k}", "commit", "sync") of a job for `attempt`."""
    app = app or celery_app
    if unit.startswith("shard:"):
        name, args = SHARD, [job_id, int(unit.split(":", 1)[1]), attempt]
    else:
        name = {"plan": PLAN, "commit": COMMIT, "sync": SYNC}[unit]
        args = [job_id, attempt]
    app.send_task(name, args=args, queue=QUEUE, countdown=countdown or None)


def first_unit(kind: str) -> str:
    return "plan" if kind == "predict" else "sync"
