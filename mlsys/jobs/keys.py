"""The Redis keys of the job engine (all under `mlsys:`). Only `mlsys.jobs` uses them.

job:{id}            hash: kind, state, phase, principal, params, prepared, plan, result,
                    error, timestamps, rows_total, shards_total, score, idem
job:{id}:units      hash: unit -> {"state": queued|running|done, "attempt": n, "worker",
                    "given": attempts given back by stopping workers, not counted as spent}
                    units are "plan", "shard:{k}", "commit" (predict) or "sync" (registry)
job:{id}:progress   hash: shard index -> most rows any attempt of that shard has done
job:{id}:done       list holding the final state once the job ended (what `wait` blocks on)
lease:{id}:{unit}   string "{attempt}", expiring after MLSYS_RECOVERY_TIMEOUT; a running unit
                    renews it by heartbeat, so a missing lease means its worker is dead
jobs[|p=..][|k=..][|s=..]
                    sorted sets of job ids by submit time: every job, and by principal, kind
                    and state (each combination), so a listing page costs O(page)
active              set of job ids not yet finished (what the reaper scans)
idem:{len}:{principal}:{key}
                    job id submitted by that principal with that idempotency key
seen:{what}:{id}    the reaper's notes on a job (first sighting of a stall, a resend)
reaper-lock         one reaper pass at a time across workers
lock:{what}         a redis-py Lock (`JobStore.exclusive`): "registry-sync:{env}" (one registry
                    sync per environment at a time), "table:{project.dataset.table}" (one
                    landing in a warehouse table at a time)
workers             sorted set: "{slots}|{worker name}" -> when that announcement lapses (epoch
                    seconds); slots is how many units the worker runs at once
"""

from __future__ import annotations

PREFIX = "mlsys:"


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def units(job_id: str) -> str:
    return f"{job(job_id)}:units"


def progress(job_id: str) -> str:
    return f"{job(job_id)}:progress"


def done(job_id: str) -> str:
    return f"{job(job_id)}:done"


def lease(job_id: str, unit: str) -> str:
    return f"{PREFIX}lease:{job_id}:{unit}"


def active() -> str:
    return f"{PREFIX}active"


def idempotency(principal: str, key: str) -> str:
    # The length prefix keeps ("a:b", "c") and ("a", "b:c") apart.
    return f"{PREFIX}idem:{len(principal)}:{principal}:{key}"


def seen(what: str, job_id: str) -> str:
    return f"{PREFIX}seen:{what}:{job_id}"


def reaper_lock() -> str:
    return f"{PREFIX}reaper-lock"


def lock(what: str) -> str:
    return f"{PREFIX}lock:{what}"


def workers() -> str:
    return f"{PREFIX}workers"


def index(principal: str | None = None, kind: str | None = None, state: str | None = None) -> str:
    """The listing index of jobs with these attributes (None: any). Lua's `state_indexes`
    builds the same names."""
    key = f"{PREFIX}jobs"
    if principal is not None:
        key += f"|p={len(principal)}:{principal}"
    if kind is not None:
        key += f"|k={kind}"
    if state is not None:
        key += f"|s={state}"
    return key


def all_indexes(principal: str, kind: str, state: str) -> list[str]:
    """Every listing index a job belongs to."""
    return [index(p, k, s) for p in (None, principal) for k in (None, kind) for s in (None, state)]
