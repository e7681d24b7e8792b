"""Give back the units of a worker that is told to stop, so they run again elsewhere at once.

Cloud Run stops an instance (scale-in, a new revision) with SIGTERM to its main process and
kills it 10 s later. Celery's warm shutdown waits for the running tasks, which a shard
outlives, so the kill would come first: the unit's lease would live on for up to
MLSYS_RECOVERY_TIMEOUT before the reaper noticed, and the reaper's next attempt would count as
a lost one. Instead, as soon as the shutdown starts, the worker's main process gives back each
unit its pool runs (`JobStore.give_back`: lease dropped, next attempt queued as given back, not
spent) and sends it, so another worker picks it up within the grace period.

The pool process still running the old attempt is fenced: it can no longer renew the lease nor
mark the unit done; it stops at its next lease renewal (Superseded) or dies with the instance.
Units a worker had only reserved (prefetched, not started) are sent again too: their messages
wait unacked in Redis until the visibility timeout if the kill comes before Celery restores
them, and a copy that arrives twice finds the unit claimed and does nothing.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_shutting_down

from worker.reconnect import give_back, unit_of
from worker.units import worker_name

log = logging.getLogger(__name__)

#: How long the signal handler waits for the give-backs (well inside Cloud Run's 10 s).
_WAIT_SECONDS = 5.0


def _requests() -> list[tuple[tuple[str, str, int], str]]:
    """(unit, holder) of every request this worker runs or has reserved. A reserved request
    has no pool process yet, so its holder matches no claim: it can only be sent again."""
    from celery.worker import state

    found = []
    # A running request is in both sets (reserved until it ends): once each.
    requests = {request.id: request for request in state.reserved_requests}
    requests |= {request.id: request for request in state.active_requests}
    for request in requests.values():
        unit = unit_of(request.type, list(request.args or []))
        if unit is not None:
            pid = request.worker_pid
            found.append((unit, worker_name(pid) if pid else "(reserved)"))
    return found


def give_back_all() -> list[str]:
    """Give back every unit this worker runs or reserved; returns what was done."""
    done = []
    for (job_id, unit, attempt), holder in _requests():
        try:
            done.append(give_back(job_id, unit, attempt, holder))
        except Exception as error:  # one failed give-back must not keep the others back
            done.append(f"{job_id} {unit}: could not give back ({error})")
    return done


def _run(sig, how) -> None:
    log.warning("worker stopping (%s, %s shutdown): giving back its units", sig, how)
    for line in give_back_all():
        log.warning("worker stopping: %s", line)


def _shutting_down(sig=None, how=None, **_kwargs) -> None:
    # In the main process's signal handler: the work, logging included, runs in a thread of
    # its own (Redis and logging locks the interrupted code may hold), waited for a bounded
    # time.
    thread = threading.Thread(target=_run, args=(sig, how), name="mlsys-give-back", daemon=True)
    thread.start()
    thread.join(_WAIT_SECONDS)


def connect() -> None:
    """Give back the units when the worker starts to shut down (SIGTERM, SIGINT, SIGQUIT)."""
    worker_shutting_down.connect(_shutting_down, weak=False, dispatch_uid="mlsys-give-back")
