"""Run the job engine's recovery pass (`mlsys.jobs.recovery`) in every worker.

Every worker's main process runs the loop in a thread; one pass at a time holds a Redis lock.
A dead worker is noticed within MLSYS_RECOVERY_TIMEOUT plus a quarter of it. The same loop
announces how many units the worker runs at once, so a plan can give a job every slot.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from celery.signals import worker_ready, worker_shutdown

from mlsys.jobs import JobStore
from mlsys.jobs.recovery import reap_once
from mlsys.settings import Settings
from mlsys.warehouse import JobScope
from worker import context
from worker.dispatch import send_unit

log = logging.getLogger(__name__)
_stop = threading.Event()


def _discard(job_id: str, env: str) -> None:
    if env:
        context.warehouse().discard(JobScope(job_id, env))


def run_forever(settings: Settings, name: str = "", slots: int = 0) -> None:
    jobs = JobStore.from_settings(settings)
    interval = max(0.25, settings.recovery_timeout / 4)
    while True:
        try:
            if slots:
                jobs.announce_worker(name, slots, ttl_seconds=interval * 3)
        except redis.RedisError as error:
            log.warning("could not announce this worker: %s", error)
        if _stop.wait(interval):
            return
        try:
            if not jobs.lead(interval * 0.9):
                continue
            for action in reap_once(jobs, settings, send=send_unit, discard=_discard):
                log.warning("reaper: %s", action)
            # Listing indexes outlive the records they list: one worker prunes them now and then.
            if jobs.once("prune", "job-indexes", settings.index_prune_seconds):
                log.info("pruned %d expired jobs from the listing indexes", jobs.prune_indexes())
        except redis.RedisError as error:
            log.warning("reaper: Redis unavailable (%s)", error)
            time.sleep(interval)
        except Exception:
            log.exception("reaper pass failed")


def _start(sender=None, **_kwargs) -> None:
    _stop.clear()
    name = getattr(sender, "hostname", "") or ""
    slots = getattr(getattr(sender, "controller", None), "concurrency", 0) or 0
    threading.Thread(
        target=run_forever,
        args=(context.settings(), name, int(slots)),
        name="mlsys-reaper",
        daemon=True,
    ).start()


def _shutdown(**_kwargs) -> None:
    _stop.set()


def connect() -> None:
    """Start the reaper when a worker is ready and stop it when it shuts down."""
    worker_ready.connect(_start, weak=False, dispatch_uid="mlsys-reaper-start")
    worker_shutdown.connect(_shutdown, weak=False, dispatch_uid="mlsys-reaper-stop")
