"""Job records in Redis: what the API shows and what makes every step of a job run once.

Written by the web app (create, cancel) and the workers (claim, progress, finish), so status,
listing and 404s are right whatever Celery's result backend says (Celery reports PENDING for
any id it never saw).

Keys, all under `mlsys:`:
  job:{id}          hash: kind, state, phase, params, result, error, timestamps, rows_total
  job:{id}:units    hash: unit -> {"state": queued|running|done, "attempt": n}
                    units are "plan", "shard:{k}", "commit" (predict) or "sync" (registry)
  job:{id}:progress hash: shard index -> rows done by that shard's current attempt
  lease:{id}:{unit} string "{attempt}", expiring after MLSYS_RECOVERY_TIMEOUT; a running unit
                    renews it by heartbeat, so a missing lease means its worker is dead
  jobs              sorted set of every job by submit time (listing)
  active            set of job ids not yet finished (what the reaper scans)
  idem:{key}        job id submitted with an idempotency key
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from mlsys.errors import JobConflict, JobNotFound

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")
KINDS = ("predict", "registry_sync")
PREFIX = "mlsys:"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_job_id() -> str:
    return uuid.uuid4().hex


# Claim a unit for one attempt. Returns "ok", "done" (already finished), "busy" (another live
# attempt holds the lease), "stale" (a newer attempt exists) or "over" (job no longer running).
_CLAIM = """
local job = KEYS[1]; local units = KEYS[2]; local lease = KEYS[3]
local unit = ARGV[1]; local attempt = tonumber(ARGV[2]); local ttl = tonumber(ARGV[3])
local state = redis.call('HGET', job, 'state')
if state ~= 'queued' and state ~= 'running' then return 'over' end
local raw = redis.call('HGET', units, unit)
local current = {state='queued', attempt=0}
if raw then current = cjson.decode(raw) end
if current.state == 'done' then return 'done' end
if attempt < current.attempt then return 'stale' end
if redis.call('EXISTS', lease) == 1 then return 'busy' end
redis.call('SET', lease, tostring(attempt), 'PX', ttl)
redis.call('HSET', units, unit, cjson.encode({state='running', attempt=attempt, worker=ARGV[5]}))
if state == 'queued' then
  redis.call('HSET', job, 'state', 'running', 'started_at', ARGV[4])
end
return 'ok'
"""

# Renew a lease only while it is still this attempt's.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# Mark a unit done (only by the attempt holding it) and drop its lease; returns the number of
# units of `prefix` that are done, so the last shard knows it is last.
_DONE = """
local units = KEYS[1]; local lease = KEYS[2]
local unit = ARGV[1]; local attempt = tonumber(ARGV[2]); local prefix = ARGV[3]
local raw = redis.call('HGET', units, unit)
if not raw then return -1 end
local current = cjson.decode(raw)
if current.attempt ~= attempt then return -1 end
current.state = 'done'
redis.call('HSET', units, unit, cjson.encode(current))
if redis.call('GET', lease) == tostring(attempt) then redis.call('DEL', lease) end
local done = 0
local all = redis.call('HGETALL', units)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, string.len(prefix)) == prefix then
    if cjson.decode(all[i + 1]).state == 'done' then done = done + 1 end
  end
end
return done
"""

# Move a job between states only from the states given; returns 1 on success.
_TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
local allowed = cjson.decode(ARGV[1])
for _, s in ipairs(allowed) do
  if s == state then
    local fields = cjson.decode(ARGV[2])
    for k, v in pairs(fields) do redis.call('HSET', KEYS[1], k, v) end
    return 1
  end
end
return 0
"""


@dataclass(frozen=True)
class Claim:
    status: str  # ok | done | busy | stale | over

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class JobStore:
    """Job records, unit claims and leases on one Redis."""

    def __init__(self, client: redis.Redis, keep_seconds: int = 7 * 24 * 3600) -> None:
        self.r = client
        self.keep_seconds = keep_seconds
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._done = client.register_script(_DONE)
        self._transition = client.register_script(_TRANSITION)

    @classmethod
    def from_url(
        cls, url: str, keep_seconds: int = 7 * 24 * 3600, socket_timeout: float = 30
    ) -> JobStore:
        # Bounded timeouts: a caller waiting on an unreachable Redis gets an error, not a hang.
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=socket_timeout,
            health_check_interval=30,
        )
        return cls(client, keep_seconds)

    def find_by_idempotency_key(self, key: str) -> dict[str, Any] | None:
        """The job first submitted with `key`, if it is still recorded."""
        job_id = self.r.get(f"{PREFIX}idem:{key}")
        return self.get(job_id) if job_id else None

    # --- keys ---------------------------------------------------------------------------
    @staticmethod
    def _job(job_id: str) -> str:
        return f"{PREFIX}job:{job_id}"

    @staticmethod
    def _units(job_id: str) -> str:
        return f"{PREFIX}job:{job_id}:units"

    @staticmethod
    def _progress(job_id: str) -> str:
        return f"{PREFIX}job:{job_id}:progress"

    @staticmethod
    def _lease(job_id: str, unit: str) -> str:
        return f"{PREFIX}lease:{job_id}:{unit}"

    # --- create / read ------------------------------------------------------------------
    def create(
        self,
        kind: str,
        params: dict[str, Any],
        rows_total: int | None = None,
        idempotency_key: str | None = None,
        job_id: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Record a new queued job. With an idempotency key already used, returns the job
        submitted with it and False."""
        job_id = job_id or new_job_id()
        if idempotency_key:
            key = f"{PREFIX}idem:{idempotency_key}"
            if not self.r.set(key, job_id, nx=True, ex=self.keep_seconds):
                # The first request with this key may still be writing its record: wait for it
                # rather than start a second job.
                for _ in range(40):
                    existing = self.r.get(key)
                    job = self.get(existing) if existing else None
                    if job is not None:
                        return job, False
                    time.sleep(0.05)
                self.r.set(key, job_id, ex=self.keep_seconds)  # its submitter died: take over
        submitted = time.time()
        record = {
            "job_id": job_id,
            "kind": kind,
            "state": "queued",
            "phase": "queued",
            "params": json.dumps(params),
            "submitted_at": _now(),
            "rows_total": "" if rows_total is None else str(rows_total),
            "idempotency_key": idempotency_key or "",
        }
        with self.r.pipeline() as pipe:
            pipe.hset(self._job(job_id), mapping=record)
            pipe.zadd(f"{PREFIX}jobs", {job_id: submitted})
            pipe.sadd(f"{PREFIX}active", job_id)
            pipe.execute()
        return self.get(job_id), True

    def delete(self, job_id: str) -> None:
        """Forget a job (used when enqueueing it failed)."""
        with self.r.pipeline() as pipe:
            for key in (self._job(job_id), self._units(job_id), self._progress(job_id)):
                pipe.delete(key)
            pipe.zrem(f"{PREFIX}jobs", job_id)
            pipe.srem(f"{PREFIX}active", job_id)
            pipe.execute()

    def raw(self, job_id: str) -> dict[str, str] | None:
        data = self.r.hgetall(self._job(job_id))
        return data or None

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The public view of a job, or None."""
        with self.r.pipeline() as pipe:
            pipe.hgetall(self._job(job_id))
            pipe.hgetall(self._units(job_id))
            pipe.hgetall(self._progress(job_id))
            data, units, progress = pipe.execute()
        if not data:
            return None
        return _view(data, units, progress)

    def require(self, job_id: str) -> dict[str, Any]:
        job = self.get(job_id)
        if job is None:
            raise JobNotFound(f"No job {job_id!r}.", hint="List jobs with GET /jobs.")
        return job

    def list(
        self, state: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Most recent first."""
        out: list[dict[str, Any]] = []
        start = 0
        page = max(limit * 2, 50)
        while len(out) < limit:
            ids = self.r.zrevrange(f"{PREFIX}jobs", start, start + page - 1)
            if not ids:
                break
            for job_id in ids:
                job = self.get(job_id)
                if job is None:  # expired record: drop it from the index
                    self.r.zrem(f"{PREFIX}jobs", job_id)
                    continue
                if (state and job["state"] != state) or (kind and job["kind"] != kind):
                    continue
                out.append(job)
                if len(out) == limit:
                    break
            start += page
        return out

    def active_jobs(self) -> list[str]:
        return sorted(self.r.smembers(f"{PREFIX}active"))

    def state(self, job_id: str) -> str | None:
        return self.r.hget(self._job(job_id), "state")

    # --- transitions ----------------------------------------------------------------------
    def transition(self, job_id: str, allowed: tuple[str, ...], **fields: Any) -> bool:
        values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
        result = self._transition(
            keys=[self._job(job_id)], args=[json.dumps(list(allowed)), json.dumps(values)]
        )
        if result == 1 and fields.get("state") in TERMINAL:
            with self.r.pipeline() as pipe:
                pipe.srem(f"{PREFIX}active", job_id)
                for key in (self._job(job_id), self._units(job_id), self._progress(job_id)):
                    pipe.expire(key, self.keep_seconds)
                pipe.execute()
        return result == 1

    def set_fields(self, job_id: str, **fields: Any) -> None:
        values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
        self.r.hset(self._job(job_id), mapping=values)

    def finish(self, job_id: str, state: str, **fields: Any) -> bool:
        """Move a live job to a terminal state (first writer wins)."""
        return self.transition(
            job_id, ("queued", "running"), state=state, phase=state, finished_at=_now(), **fields
        )

    def fail(self, job_id: str, error: BaseException | str, error_type: str | None = None) -> bool:
        message = str(error)
        kind = error_type or (type(error).__name__ if isinstance(error, BaseException) else "Error")
        return self.finish(job_id, "failed", error={"type": kind, "message": message})

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job; refuses once the commit has started."""
        job = self.require(job_id)
        if job["state"] in TERMINAL:
            raise JobConflict(
                f"Job {job_id} is already {job['state']}.", hint="Only live jobs can be cancelled."
            )
        result = self._transition(
            keys=[self._job(job_id)],
            args=[
                json.dumps(["queued", "running"]),
                json.dumps({"cancel_requested": "1"}),
            ],
        )
        if result != 1:
            return self.require(job_id)
        # The commit step and cancel race on the phase: whoever flips it first wins.
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self._job(job_id))
                    phase = pipe.hget(self._job(job_id), "phase")
                    state = pipe.hget(self._job(job_id), "state")
                    if phase in ("committing", "committed") or state in TERMINAL:
                        pipe.unwatch()
                        break
                    pipe.multi()
                    pipe.hset(
                        self._job(job_id),
                        mapping={"state": "cancelled", "phase": "cancelled", "finished_at": _now()},
                    )
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        job = self.require(job_id)
        if job["state"] == "cancelled":
            self.r.srem(f"{PREFIX}active", job_id)
            for key in (self._job(job_id), self._units(job_id), self._progress(job_id)):
                self.r.expire(key, self.keep_seconds)
            return job
        raise JobConflict(
            f"Job {job_id} is already committing its output; it can no longer be cancelled.",
            hint="Wait for it to finish.",
        )

    def begin_commit(self, job_id: str) -> bool:
        """Flip a running job into its commit phase unless it was cancelled first."""
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self._job(job_id))
                    state = pipe.hget(self._job(job_id), "state")
                    phase = pipe.hget(self._job(job_id), "phase")
                    if state != "running":
                        pipe.unwatch()
                        return False
                    if phase in ("committing", "committed"):
                        pipe.unwatch()
                        return True
                    pipe.multi()
                    pipe.hset(self._job(job_id), "phase", "committing")
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    # --- units, leases, progress ----------------------------------------------------------
    def init_units(self, job_id: str, units: list[str]) -> None:
        """Declare units as queued (keeps any that already exist)."""
        queued = json.dumps({"state": "queued", "attempt": 1})
        with self.r.pipeline() as pipe:
            for unit in units:
                pipe.hsetnx(self._units(job_id), unit, queued)
            pipe.execute()

    def units(self, job_id: str) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.r.hgetall(self._units(job_id)).items()}

    def claim(
        self, job_id: str, unit: str, attempt: int, ttl_seconds: float, worker: str = ""
    ) -> Claim:
        """Take `unit` for `attempt` on `worker` (a name shown in the job's shard list)."""
        status = self._claim(
            keys=[self._job(job_id), self._units(job_id), self._lease(job_id, unit)],
            args=[unit, attempt, int(ttl_seconds * 1000), _now(), worker],
        )
        return Claim(status)

    def renew(self, job_id: str, unit: str, attempt: int, ttl_seconds: float) -> bool:
        return bool(
            self._renew(
                keys=[self._lease(job_id, unit)], args=[str(attempt), int(ttl_seconds * 1000)]
            )
        )

    def lease_alive(self, job_id: str, unit: str) -> bool:
        return bool(self.r.exists(self._lease(job_id, unit)))

    def release(self, job_id: str, unit: str, attempt: int) -> None:
        """Drop this attempt's lease without finishing the unit (it failed or gave up)."""
        self.r.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
            "return 0",
            1,
            self._lease(job_id, unit),
            str(attempt),
        )

    def mark_done(self, job_id: str, unit: str, attempt: int, prefix: str = "shard:") -> int:
        """Returns how many units starting with `prefix` are done, or -1 if this attempt was
        superseded."""
        return int(
            self._done(
                keys=[self._units(job_id), self._lease(job_id, unit)], args=[unit, attempt, prefix]
            )
        )

    def bump_attempt(self, job_id: str, unit: str, attempt: int) -> None:
        """Record that attempt `attempt` of `unit` is being dispatched (by the reaper)."""
        self.r.hset(self._units(job_id), unit, json.dumps({"state": "queued", "attempt": attempt}))

    def set_progress(self, job_id: str, shard: int, rows_done: int) -> None:
        self.r.hset(self._progress(job_id), str(shard), rows_done)

    def ping(self) -> bool:
        return bool(self.r.ping())


def _view(data: dict[str, str], units: dict[str, str], progress: dict[str, str]) -> dict[str, Any]:
    rows_total = int(data["rows_total"]) if data.get("rows_total") else None
    rows_done = sum(int(v) for v in progress.values())
    if data.get("state") == "succeeded" and rows_total is not None:
        rows_done = rows_total
    percent = round(100.0 * rows_done / rows_total, 1) if rows_total else 0.0
    shards = []
    for name, raw in sorted(units.items(), key=lambda kv: _unit_order(kv[0])):
        if name.startswith("shard:"):
            unit = json.loads(raw)
            index = int(name.split(":", 1)[1])
            shards.append(
                {
                    "index": index,
                    "state": unit["state"],
                    "attempt": unit["attempt"],
                    "worker": unit.get("worker") or None,
                    "rows_done": int(progress.get(str(index), 0)),
                }
            )
    return {
        "job_id": data["job_id"],
        "kind": data["kind"],
        "state": data["state"],
        "phase": data.get("phase") or data["state"],
        "progress": {
            "rows_done": rows_done,
            "rows_total": rows_total,
            "percent": min(percent, 100.0),
        },
        "params": json.loads(data.get("params") or "{}"),
        "result": json.loads(data["result"]) if data.get("result") else None,
        "error": json.loads(data["error"]) if data.get("error") else None,
        "submitted_at": data.get("submitted_at"),
        "started_at": data.get("started_at") or None,
        "finished_at": data.get("finished_at") or None,
        "shards": shards,
    }


def _unit_order(name: str) -> tuple[int, int]:
    if name.startswith("shard:"):
        return (1, int(name.split(":", 1)[1]))
    return (0 if name == "plan" else 2, 0)
