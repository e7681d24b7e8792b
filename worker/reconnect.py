"""Recover at once from a lost broker connection (a Redis restart) instead of after a lease.

When the connection to Redis drops, Celery cancels the late-acked tasks that were running
(`worker_cancel_long_running_tasks_on_connection_loss`): it terminates their pool processes, so
their units stop. But each unit's lease lives on in Redis (restored from the AOF), and the
reaper would wait a whole MLSYS_RECOVERY_TIMEOUT for it to expire before running the unit
again. This worker knows which units it cancelled: once Redis answers again it gives their
leases back and dispatches their next attempt right away.

Celery announces such a cancel through `Task.on_retry` in the worker's main process, with no
exception info; that is the hook (the task class of the app).
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from celery import Task

log = logging.getLogger(__name__)

_pending: list[tuple[str, str, int]] = []
_lock = threading.Lock()
_running = threading.Event()


def unit_of(task_name: str, args: list) -> tuple[str, str, int] | None:
    """(job_id, unit, attempt) a task message runs, from its name and arguments."""
    from worker.app import COMMIT_TASK, PLAN_TASK, SHARD_TASK, SYNC_TASK

    if not args:
        return None
    if task_name == SHARD_TASK and len(args) >= 2:
        return str(args[0]), f"shard:{int(args[1])}", int(args[2]) if len(args) > 2 else 1
    unit = {PLAN_TASK: "plan", COMMIT_TASK: "commit", SYNC_TASK: "sync"}.get(task_name)
    if unit is None:
        return None
    return str(args[0]), unit, int(args[1]) if len(args) > 1 else 1


def give_back(job_id: str, unit: str, attempt: int) -> str:
    """Release `attempt`'s lease of `unit` and dispatch the next attempt, unless someone (the
    reaper, another worker) already moved the unit on. Returns what it did."""
    from worker import context
    from worker.dispatch import send_unit

    jobs, settings = context.jobs(), context.settings()
    jobs.release(job_id, unit, attempt)
    state = jobs.units(job_id).get(unit)
    if state is None or state["state"] != "running" or int(state["attempt"]) != attempt:
        return f"{job_id} {unit}: already moved on"
    if attempt >= settings.max_attempts or jobs.lease_alive(job_id, unit):
        return f"{job_id} {unit}: left to the reaper"  # it fails the job, or it is held
    jobs.requeue(job_id, unit, attempt + 1)
    send_unit(job_id, unit, attempt + 1)
    return f"{job_id} {unit}: attempt {attempt + 1} dispatched"


def _drain() -> None:
    """Give back every cancelled unit, retrying while Redis is still away."""
    while True:
        with _lock:
            if not _pending:
                _running.clear()
                return
            item = _pending[0]
        try:
            log.warning("broker connection back: %s", give_back(*item))
        except (redis.RedisError, OSError) as error:
            log.info("waiting for Redis to give back %s/%s: %s", item[0], item[1], error)
            time.sleep(0.5)
            continue
        except Exception:
            log.exception("could not give back %s/%s", item[0], item[1])
        with _lock:
            _pending.remove(item)


def cancelled(task_name: str, args: list) -> None:
    """Remember a unit Celery cancelled, and give it back as soon as Redis answers."""
    unit = unit_of(task_name, list(args or []))
    if unit is None:
        return
    with _lock:
        _pending.append(unit)
        if _running.is_set():
            return
        _running.set()
    threading.Thread(target=_drain, name="mlsys-give-back", daemon=True).start()


class UnitTask(Task):
    """The task class of mlsys' app: hears about cancels on connection loss."""

    def on_retry(self, exc, task_id, args, kwargs, einfo) -> None:
        # Celery calls this without exception info only when it cancels a running task
        # (worker.request.Request.cancel), in the worker's main process.
        if einfo is None:
            cancelled(self.name, args)
        super().on_retry(exc, task_id, args, kwargs, einfo)
