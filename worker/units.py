"""Run one unit of a job exactly once at a time, however often its message arrives.

A unit ("plan", "shard:3", "commit", "sync") is claimed for an attempt with a lease in Redis
that a heartbeat thread renews. A second delivery of the same message finds the lease held (or
the unit done) and does nothing; a worker that dies stops renewing, its lease expires after
MLSYS_RECOVERY_TIMEOUT and the reaper dispatches the next attempt elsewhere. Errors are sorted
into transient (retried, with backoff, up to MLSYS_MAX_ATTEMPTS) and permanent (the job fails
at once with the reason).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import redis
from celery.exceptions import SoftTimeLimitExceeded

from mlsys.errors import BackendUnavailable, Cancelled, MlsysError
from mlsys.jobs import JobStore
from mlsys.settings import Settings
from worker.dispatch import send_unit

log = logging.getLogger(__name__)

#: Errors worth another attempt: the backend or the network hiccupped.
TRANSIENT = (
    BackendUnavailable,
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def worker_name(pid: int | None = None) -> str:
    """`node:pid` of the process running a unit (shown per shard; the worker's main process
    names its pool processes so to give back their units, worker/shutdown.py). The node is
    the worker's unique name from docker/start (MLSYS_WORKER_NAME), else the hostname."""
    node = os.environ.get("MLSYS_WORKER_NAME") or socket.gethostname()
    return f"{node}:{os.getpid() if pid is None else pid}"


class Superseded(Exception):
    """This attempt lost its lease (its worker stalled); a newer attempt owns the unit."""


@dataclass
class UnitRun:
    jobs: JobStore
    settings: Settings
    job_id: str
    unit: str
    attempt: int
    _stop: threading.Event = field(default_factory=threading.Event)
    _lost: threading.Event = field(default_factory=threading.Event)
    _locks: list[redis.lock.Lock] = field(default_factory=list)

    def _heartbeat(self) -> None:
        ttl = self.settings.recovery_timeout
        while not self._stop.wait(ttl / 3):
            try:
                if not self.jobs.renew(self.job_id, self.unit, self.attempt, ttl):
                    self._lost.set()
                    return
            except redis.RedisError:
                log.warning("lease renewal of %s/%s failed; retrying", self.job_id, self.unit)
                continue
            for lock in list(self._locks):
                try:
                    lock.reacquire()
                except redis.RedisError:  # lapsed (LockError) or a hiccup: the lease decides
                    log.warning("could not extend %s of %s/%s", lock.name, self.job_id, self.unit)

    @contextlib.contextmanager
    def exclusive(self, what: str, seconds: float) -> Iterator[None]:
        """JobStore.exclusive for as long as this attempt holds its lease: the heartbeat extends
        the lock with the lease, so the lock of a worker killed while holding it lapses with
        its lease, and the attempt that redoes the unit does not wait for more than that."""
        hold = self.settings.recovery_timeout
        with self.jobs.exclusive(what, seconds, hold_seconds=hold) as lock:
            self._locks.append(lock)
            try:
                yield
            finally:
                self._locks.remove(lock)

    def should_stop(self) -> bool:
        """True once the job was cancelled or failed, or this attempt lost its lease."""
        if self._lost.is_set():
            return True
        return not self.jobs.is_live(self.job_id)

    def check(self) -> None:
        if self._lost.is_set():
            raise Superseded(f"{self.job_id}/{self.unit} attempt {self.attempt} lost its lease")
        if not self.jobs.is_live(self.job_id):
            raise Cancelled(f"Job {self.job_id} is no longer running.")


@contextlib.contextmanager
def claimed(
    jobs: JobStore,
    settings: Settings,
    job_id: str,
    unit: str,
    attempt: int,
    cleanup: Callable[[], None] | None = None,
) -> Iterator[UnitRun | None]:
    """Claim `unit` for `attempt`; yields None when there is nothing to do. Failures inside
    are handled here: retried, or recorded on the job."""
    claim = jobs.claim(job_id, unit, attempt, settings.recovery_timeout, worker_name())
    if not claim.ok:
        log.info("skip %s/%s attempt %s: %s", job_id, unit, attempt, claim.status)
        yield None
        return
    run = UnitRun(jobs, settings, job_id, unit, attempt)
    beat = threading.Thread(target=run._heartbeat, name=f"lease-{unit}", daemon=True)
    beat.start()
    try:
        yield run
    except (Cancelled, Superseded) as stop:
        log.info("stop %s/%s attempt %s: %s", job_id, unit, attempt, stop)
        jobs.release(job_id, unit, attempt)
        # Only a job that ended drops its staging: while it runs, an attempt that merely lost
        # its lease must not touch what the attempt that replaced it (and the other shards)
        # staged. Once it ended nothing staged is wanted, whoever holds the lease, and this
        # attempt may have staged after the failing unit's cleanup ran.
        if cleanup and not jobs.is_live(job_id):
            cleanup()
    except TRANSIENT as error:
        jobs.release(job_id, unit, attempt)
        if jobs.attempts_spent(job_id, unit) < settings.max_attempts:
            delay = min(60.0, 2.0**attempt)
            log.warning(
                "%s/%s attempt %s: %s; retrying in %.0fs", job_id, unit, attempt, error, delay
            )
            jobs.requeue(job_id, unit, attempt + 1)
            send_unit(job_id, unit, attempt + 1, countdown=delay)
        else:
            _fail(jobs, job_id, unit, error, cleanup, attempts=attempt)
    except SoftTimeLimitExceeded:
        jobs.release(job_id, unit, attempt)
        _fail(
            jobs,
            job_id,
            unit,
            _time_limit(unit),
            cleanup,
            attempts=attempt,
        )
    except Exception as error:  # every other error fails the job with its reason
        jobs.release(job_id, unit, attempt)
        if isinstance(error.__cause__, SoftTimeLimitExceeded):
            # The pipeline wraps what the model raised (ModelFailed); the limit is still ours.
            _fail(jobs, job_id, unit, _time_limit(unit), cleanup, attempts=attempt)
            return
        if run._lost.is_set():  # a newer attempt owns the unit; its outcome decides
            log.warning("superseded %s/%s attempt %s failed: %s", job_id, unit, attempt, error)
            if cleanup and not jobs.is_live(job_id):
                cleanup()
            return
        if not isinstance(error, MlsysError):
            log.exception("%s/%s failed", job_id, unit)
        _fail(jobs, job_id, unit, error, cleanup, attempts=attempt)
    finally:
        run._stop.set()


def _time_limit(unit: str) -> TimeoutError:
    return TimeoutError(f"{unit} ran longer than MLSYS_TASK_TIME_LIMIT")


def _fail(jobs, job_id, unit, error, cleanup, attempts: int) -> None:
    message = str(error) or type(error).__name__
    if not isinstance(error, MlsysError):
        # Unexpected errors say what they were: "KeyError: 'Fare'", not just "'Fare'".
        message = f"{type(error).__name__}: {message}"
    if jobs.fail(job_id, f"{unit}: {message}", error_type=type(error).__name__):
        log.error("job %s failed in %s after %s attempt(s): %s", job_id, unit, attempts, message)
    if cleanup:
        cleanup()
