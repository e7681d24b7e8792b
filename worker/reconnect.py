"""Recover at once from a lost broker connection (a Redis restart) instead of after a lease.

When the connection to Redis drops, Celery cancels the late-acked tasks that were running
(`worker_cancel_long_running_tasks_on_connection_loss`): it terminates their pool processes, so
their units stop. But each unit's lease lives on in Redis (restored from the AOF), and the
reaper would wait a whole MLSYS_RECOVERY_TIMEOUT for it to expire before running the unit
again. This worker knows which units it cancelled: once Redis answers again it gives their
leases back and dispatches their next attempt right away. It also puts back in their queues
the unacked messages the broker transport could not restore while Redis was away
(worker/broker.py), which would otherwise wait for the visibility timeout.

Celery announces such a cancel through `Task.on_retry` in the worker's main process, with no
exception info; that is the hook (the task class of the app).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from celery import Task
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)

#: What to do once Redis answers: (rank, what, action returning what it did), lowest rank
#: first. Give-backs go before restores: a restored message of a cancelled unit then finds its
#: next attempt queued and does nothing, rather than run the same attempt again while its
#: lease is being given back.
_pending: list[tuple[int, str, Callable[[], str]]] = []
_GIVE_BACK, _RESTORE = 0, 1
_lock = threading.Lock()
_running = threading.Event()
#: Errors of a Redis that is not back yet (kombu wraps redis-py's while it connects).
_AWAY = (redis.RedisError, OSError, OperationalError)


def unit_of(task_name: str, args: list) -> tuple[str, str, int] | None:
    """(job_id, unit, attempt) a task message runs, from its name and arguments."""
    from worker.app import ALIAS_TASK, COMMIT_TASK, PLAN_TASK, SHARD_TASK, SYNC_TASK

    if not args:
        return None
    if task_name == SHARD_TASK and len(args) >= 2:
        return str(args[0]), f"shard:{int(args[1])}", int(args[2]) if len(args) > 2 else 1
    units = {PLAN_TASK: "plan", COMMIT_TASK: "commit", SYNC_TASK: "sync", ALIAS_TASK: "alias"}
    unit = units.get(task_name)
    if unit is None:
        return None
    return str(args[0]), unit, int(args[1]) if len(args) > 1 else 1


def give_back(job_id: str, unit: str, attempt: int, holder: str = "") -> str:
    """Give back `attempt`'s lease of `unit` (held by `holder`; '' = whoever holds it) and
    dispatch the next attempt, which does not count against MLSYS_MAX_ATTEMPTS: the unit did
    nothing wrong, its worker stopped or lost Redis. An attempt that was never claimed is sent
    again; a unit someone (the reaper, another worker) moved on is left alone. Returns what it
    did."""
    from worker import context
    from worker.dispatch import send_unit

    status = context.jobs().give_back(job_id, unit, attempt, holder)
    if status == "given":
        send_unit(job_id, unit, attempt + 1)
        return f"{job_id} {unit}: attempt {attempt + 1} dispatched"
    if status == "queued":
        send_unit(job_id, unit, attempt)
        return f"{job_id} {unit}: attempt {attempt} sent again"
    return f"{job_id} {unit}: already moved on"


def restore(tags: list[str]) -> str:
    """Put the unacked messages with these delivery tags back in their queues (kombu's own
    restore, on a connection of its own); a tag already restored or acked is skipped."""
    from worker.app import celery_app

    with celery_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0)  # _drain retries
        qos = connection.default_channel.qos
        for tag in tags:
            qos.restore_by_tag(tag)
    return f"restored {len(tags)} unacked message(s)"


def _drain() -> None:
    """Do every pending action, retrying while Redis is still away."""
    while True:
        with _lock:
            if not _pending:
                _running.clear()
                return
            item = min(_pending, key=lambda pending: pending[0])
        _, what, action = item
        try:
            log.warning("broker connection back: %s", action())
        except _AWAY as error:
            log.info("waiting for Redis to %s: %s", what, error)
            time.sleep(0.25)
            continue
        except Exception:
            log.exception("could not %s", what)
        with _lock:
            _pending.remove(item)


def _when_redis_answers(rank: int, what: str, action: Callable[[], str]) -> None:
    with _lock:
        _pending.append((rank, what, action))
        if _running.is_set():
            return
        _running.set()
    threading.Thread(target=_drain, name="mlsys-reconnect", daemon=True).start()


def orphaned(tags: list[str]) -> None:
    """Restore these unacked messages as soon as Redis answers (worker/broker.py)."""
    if tags:
        what = f"restore {len(tags)} unacked message(s)"
        _when_redis_answers(_RESTORE, what, lambda: restore(tags))


def cancelled(task_name: str, args: list) -> None:
    """Remember a unit Celery cancelled, and give it back as soon as Redis answers."""
    unit = unit_of(task_name, list(args or []))
    if unit is not None:
        _when_redis_answers(_GIVE_BACK, f"give back {unit[0]}/{unit[1]}", lambda: give_back(*unit))


class UnitTask(Task):
    """The task class of mlsys' app: hears about cancels on connection loss."""

    def on_retry(self, exc, task_id, args, kwargs, einfo) -> None:
        # Celery calls this without exception info only when it cancels a running task
        # (worker.request.Request.cancel), in the worker's main process.
        if einfo is None:
            cancelled(self.name, args)
        super().on_retry(exc, task_id, args, kwargs, einfo)
