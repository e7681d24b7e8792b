"""Every Redis key of the product (all under `mlsys:`), built here and nowhere else
(tests/unit/test_redis_keys.py fails on a key prefix written anywhere else).

The job engine's:

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
profiles:{id}       hash: shard index -> that shard's monitoring profile (JSON), kept between
                    the shard tasks and the commit (`mlsys.jobs.profiles`)

Schedules (`mlsys.jobs.schedules`):
schedule:{id}       hash: data (the record as JSON), last_job
schedule:{id}:runs  list: the latest runs, newest first (job id or skip, with time)
schedule:{id}:firing
                    lock around one firing of the schedule
schedules           sorted set of every schedule by creation time

Others, whose keys a library builds under a prefix given here:
ui:session:{hash}   the dashboard's sessions (`web.ui.sessions`), under a hash of the id
ui:sessions|p={len}:{principal}
                    sorted set: a principal's session keys -> when each expires
ratelimit...        the limits library's counters of the submit budget (`mlsys.access.budget`,
                    spent by web.limits and by schedule firings), per `principal:{name}`
redbeat:...         celery-redbeat's schedule entries and lock (`worker.app`)
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


def shard_profiles(job_id: str) -> str:
    return f"{PREFIX}profiles:{job_id}"


def schedule(schedule_id: str) -> str:
    return f"{PREFIX}schedule:{schedule_id}"


def schedule_runs(schedule_id: str) -> str:
    return f"{schedule(schedule_id)}:runs"


def schedule_firing(schedule_id: str) -> str:
    return f"{schedule(schedule_id)}:firing"


def schedules() -> str:
    return f"{PREFIX}schedules"


#: Prefix of a dashboard session's key; the rest is a hash of the session id.
UI_SESSION_PREFIX = f"{PREFIX}ui:session:"


def ui_session(id_hash: str) -> str:
    return f"{UI_SESSION_PREFIX}{id_hash}"


def ui_sessions_of(principal: str) -> str:
    """The principal's dashboard sessions, scored by when they expire (for the cap)."""
    return f"{PREFIX}ui:sessions|p={len(principal)}:{principal}"


#: Flask-Limiter's key prefix (it appends its own parts).
RATE_LIMIT_PREFIX = f"{PREFIX}ratelimit"


def rate_limit_principal(name: str) -> str:
    """The limiter's key part of a principal's budget (it puts RATE_LIMIT_PREFIX in front)."""
    return f"principal:{name}"


#: celery-redbeat's key prefix (it appends its own parts).
REDBEAT_PREFIX = f"{PREFIX}redbeat:"
