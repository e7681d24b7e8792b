"""Find units whose worker died and run them again elsewhere.

Every worker's main process runs this loop in a thread (one reaper at a time holds a Redis
lock). A running unit whose lease expired lost its worker: a kill -9, an OOM kill, a machine
gone. The reaper dispatches its next attempt, or fails the job once a unit has been lost
MLSYS_MAX_ATTEMPTS times (a poison input that crashes every worker must not loop forever).
A dead worker is noticed within MLSYS_RECOVERY_TIMEOUT plus a quarter of it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime

import redis
from celery.signals import worker_ready, worker_shutdown

from mlsys.jobs import PREFIX, TERMINAL, JobStore
from mlsys.settings import Settings
from mlsys.warehouse import JobScope
from worker import context
from worker.dispatch import send_unit

log = logging.getLogger(__name__)
_stop = threading.Event()


def reap_once(jobs: JobStore, settings: Settings, send=send_unit, discard=None) -> list[str]:
    """One pass over the live jobs; returns what it did (for logs and tests)."""
    actions: list[str] = []
    for job_id in jobs.active_jobs():
        raw = jobs.raw(job_id)
        if raw is None or raw.get("state") in TERMINAL:
            jobs.r.srem(f"{PREFIX}active", job_id)
            continue
        units = jobs.units(job_id)
        for unit, state in sorted(units.items()):
            if state["state"] != "running" or jobs.lease_alive(job_id, unit):
                continue
            attempt = int(state["attempt"])
            if attempt >= settings.max_attempts:
                message = (
                    f"{unit}: its worker was lost {attempt} time(s); giving up "
                    f"(MLSYS_MAX_ATTEMPTS={settings.max_attempts})."
                )
                if jobs.fail(job_id, message, error_type="WorkerLost") and discard:
                    discard(job_id, json.loads(raw.get("params") or "{}").get("env", ""))
                actions.append(f"failed {job_id} {unit}")
                break
            jobs.bump_attempt(job_id, unit, attempt + 1)
            send(job_id, unit, attempt + 1)
            actions.append(f"redispatched {job_id} {unit} attempt {attempt + 1}")
        actions += _stalled_commit(jobs, settings, job_id, raw, units, send)
        actions += _never_started(jobs, settings, job_id, raw, units, send)
    return actions


def _never_started(jobs, settings, job_id, raw, units, send) -> list[str]:
    """A job recorded but never picked up for `5 x MLSYS_RECOVERY_TIMEOUT`: its first message may
    be lost (the API process died between recording it and sending it). Send it again; if the
    first message was only waiting in a long queue, whichever copy runs second finds the unit
    claimed or done and does nothing."""
    if raw.get("state") != "queued":
        return []
    first = "plan" if raw.get("kind") == "predict" else "sync"
    unit = units.get(first)
    if unit is None or unit["state"] != "queued":
        return []
    waited = time.time() - datetime.fromisoformat(raw["submitted_at"]).timestamp()
    period = 5 * settings.recovery_timeout
    if waited < period:
        return []
    if not jobs.r.set(f"{PREFIX}resent:{job_id}", "1", nx=True, px=int(period * 1000)):
        return []
    send(job_id, first, int(unit["attempt"]))
    return [f"resent {job_id} {first} after {waited:.0f}s queued"]


def _stalled_commit(jobs, settings, job_id, raw, units, send) -> list[str]:
    """All shards done but the commit never dispatched (its sender died): send it again."""
    shards = [u for name, u in units.items() if name.startswith("shard:")]
    commit = units.get("commit")
    if not shards or commit is None or commit["state"] != "queued":
        return []
    if raw.get("shards_total") and len(shards) < int(raw["shards_total"]):
        return []
    if any(u["state"] != "done" for u in shards) or jobs.lease_alive(job_id, "commit"):
        return []
    key = f"{PREFIX}commit-wait:{job_id}"
    if jobs.r.set(key, "1", nx=True, px=int(settings.recovery_timeout * 1000)):
        return []  # first sighting: give the commit message time to arrive
    if jobs.r.pttl(key) > 0:
        return []
    send(job_id, "commit", int(commit["attempt"]))
    jobs.r.delete(key)
    return [f"redispatched {job_id} commit"]


def _discard(job_id: str, env: str) -> None:
    if env:
        context.warehouse().discard(JobScope(job_id, env))


def run_forever(settings: Settings) -> None:
    jobs = JobStore.from_url(settings.redis_url, settings.job_keep_seconds)
    interval = max(0.25, settings.recovery_timeout / 4)
    while not _stop.wait(interval):
        try:
            # One reaper at a time across all workers.
            if not jobs.r.set(f"{PREFIX}reaper-lock", "1", nx=True, px=int(interval * 900)):
                continue
            for action in reap_once(jobs, settings, discard=_discard):
                log.warning("reaper: %s", action)
        except redis.RedisError as error:
            log.warning("reaper: Redis unavailable (%s)", error)
            time.sleep(interval)
        except Exception:
            log.exception("reaper pass failed")


@worker_ready.connect
def _start(**_kwargs) -> None:
    _stop.clear()
    threading.Thread(
        target=run_forever, args=(context.settings(),), name="mlsys-reaper", daemon=True
    ).start()


@worker_shutdown.connect
def _shutdown(**_kwargs) -> None:
    _stop.set()
