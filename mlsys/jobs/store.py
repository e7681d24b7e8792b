"""`JobStore`: the one API over the job engine's Redis records.

Written by the web app (submit, cancel) and the workers (claim, progress, finish), so status,
listing and 404s are right whatever Celery says (Celery reports PENDING for any id it never
saw). Every state change is one Lua script (`mlsys.jobs.scripts`); the key layout is in
`mlsys.jobs.keys`. Nothing outside this package touches those keys.

Longer than most modules on purpose: one class whose methods are each a thin call
of one script, so the whole API of a job's state reads in one place.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from mlsys.errors import BackendUnavailable, InvalidRequest, JobConflict, JobNotFound
from mlsys.jobs import keys, scripts
from mlsys.jobs.model import Job, JobPage, JobRecord, NewJob, job_view
from mlsys.jobs.names import LIVE, TERMINAL, JobKind, JobState, Phase, spent_attempts, unit_phase

log = logging.getLogger(__name__)

#: Job records `page` reads past per call when a predicate rejects them (see `page`).
SCAN_BUDGET = 2_000
#: Longest a caller may block in `wait` (the blocking connection's read timeout follows it).
MAX_WAIT_SECONDS = 300.0
#: What a job id may look like (the ids this store makes are 32 hex digits; the same shape as
#: a warehouse JobScope accepts).
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

#: Sends the message that runs `unit` of a job for an attempt (the worker's `send_unit`).
Send = Callable[[str, str, int], None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Claim:
    status: str  # ok | done | busy | stale | over

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Retention:
    """How long records live: `finished` seconds after a job ends, and `live` seconds after the
    last activity of a queued or running job (claims, heartbeats and progress renew it)."""

    finished: float = 7 * 24 * 3600
    live: float = 2 * 24 * 3600


class JobStore:
    """Job records, unit claims, leases, progress and listing on one Redis."""

    def __init__(
        self,
        client: redis.Redis,
        retention: Retention | None = None,
        blocking: redis.Redis | None = None,
    ) -> None:
        self._redis = client
        self._blocking = blocking or client
        self.retention = retention or Retention()
        self._scripts = {
            name: client.register_script(getattr(scripts, name))
            for name in (
                "CREATE",
                "DELETE",
                "CLAIM",
                "RENEW",
                "RELEASE",
                "DONE",
                "REQUEUE",
                "GIVE_BACK",
                "PLAN",
                "PROGRESS",
                "FINISH",
                "CANCEL",
                "BEGIN_COMMIT",
                "COMMITTED",
            )
        }

    @classmethod
    def from_url(
        cls, url: str, retention: Retention | None = None, socket_timeout: float = 30
    ) -> JobStore:
        # Bounded timeouts: a caller waiting on an unreachable Redis gets an error, not a hang.
        options = {
            "decode_responses": True,
            "socket_connect_timeout": 5,
            "health_check_interval": 30,
        }
        client = redis.Redis.from_url(url, socket_timeout=socket_timeout, **options)
        blocking = redis.Redis.from_url(url, socket_timeout=MAX_WAIT_SECONDS + 10, **options)
        return cls(client, retention, blocking)

    @classmethod
    def from_settings(cls, settings, socket_timeout: float = 30) -> JobStore:
        retention = Retention(settings.job_keep_seconds, settings.job_live_seconds)
        return cls.from_url(settings.redis_url, retention, socket_timeout)

    def _run(self, name: str, keys_: Iterable[str] = (), args: Iterable[Any] = ()) -> Any:
        return self._scripts[name](keys=list(keys_), args=list(args))

    @property
    def _live_ms(self) -> int:
        return int(self.retention.live * 1000)

    @property
    def _keep_ms(self) -> int:
        return int(self.retention.finished * 1000)

    @property
    def client(self) -> redis.Redis:
        """The Redis connection, for stores that keep their own keys beside the job engine's
        (schedules); never for the job engine's keys."""
        return self._redis

    def ping(self) -> bool:
        return bool(self._redis.ping())

    @contextmanager
    def connection(self) -> Iterator[None]:
        """Hold one connection of the client's pool open for the block (a server warming up
        opens one per request thread before traffic comes)."""
        pool = self._redis.connection_pool
        held = pool.get_connection()
        try:
            yield
        finally:
            pool.release(held)

    # --- submit -----------------------------------------------------------------------------
    def create(self, new: NewJob, job_id: str | None = None) -> tuple[Job, bool]:
        """Record a queued job with its first unit. With an idempotency key the principal
        already used, records nothing and returns that job and False."""
        job_id = job_id or new_job_id()
        fields = {
            "job_id": job_id,
            "kind": str(new.kind),
            "state": str(JobState.QUEUED),
            "phase": str(Phase.QUEUED),
            "principal": new.principal,
            "params": json.dumps(new.params),
            "submitted_at": _now(),
            "rows_total": "" if new.rows_total is None else str(new.rows_total),
            "idempotency_key": new.idempotency_key or "",
        }
        if new.prepared is not None:
            fields["prepared"] = json.dumps(new.prepared)
        idem = keys.idempotency(new.principal, new.idempotency_key) if new.idempotency_key else ""
        stored = self._run(
            "CREATE",
            keys.all_indexes(new.principal, new.kind, JobState.QUEUED),
            [job_id, json.dumps(fields), int(time.time() * 1e6), new.kind.first_unit, idem]
            + [self._live_ms],
        )
        job = self.get(stored)
        if job is None:  # expired between the script and this read: vanishingly rare
            raise BackendUnavailable("The job record vanished as it was written.", hint="Retry.")
        return job, stored == job_id

    def submit(self, new: NewJob, send: Send) -> tuple[Job, bool]:
        """Record a job and send its first unit; forget the record if sending fails, so no
        job sits queued forever without a message. Returns the job and whether it is new."""
        job, created = self.create(new)
        if not created:
            if job.kind != new.kind or job.params != new.params:
                raise JobConflict(
                    f"Idempotency key {new.idempotency_key!r} was already used for a different "
                    f"request (job {job.job_id}).",
                    hint="Use a new key for a new request.",
                )
            return job, False
        try:
            send(job.job_id, new.kind.first_unit, 1)
        except Exception as error:
            log.error("could not enqueue job %s: %s", job.job_id, type(error).__name__)
            self.delete(job.job_id)
            raise BackendUnavailable(
                "Could not queue the job: the broker is unavailable.", hint="Retry shortly."
            ) from None
        return job, True

    def find_by_idempotency_key(self, principal: str, key: str) -> Job | None:
        """The job `principal` first submitted with `key`, if it is still recorded."""
        job_id = self._redis.get(keys.idempotency(principal, key))
        return self.get(job_id) if job_id else None

    def delete(self, job_id: str) -> None:
        """Forget a job (its first message could not be sent)."""
        record = self.record(job_id)
        if record is None:
            return
        indexes = keys.all_indexes(record.principal, record.kind, record.state)
        self._run("DELETE", indexes, [job_id])

    # --- read -------------------------------------------------------------------------------
    def _views(self, job_ids: list[str]) -> list[Job | None]:
        with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(keys.job(job_id))
                pipe.hgetall(keys.units(job_id))
                pipe.hgetall(keys.progress(job_id))
            raw = pipe.execute()
        out: list[Job | None] = []
        for i in range(0, len(raw), 3):
            data, units, progress = raw[i : i + 3]
            out.append(job_view(data, units, progress) if data else None)
        return out

    def get(self, job_id: str, owner: str | None = None) -> Job | None:
        """The public view of a job, or None. With `owner`, None unless that principal
        submitted it (so another caller's job ids do not even show as existing). A malformed
        id is no job: it never reaches a key (`{id}:units` would name another record)."""
        if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
            return None
        job = self._views([job_id])[0]
        if job is None or (owner is not None and job.principal != owner):
            return None
        return job

    def owned_by(self, job_ids: list[str], owner: str) -> set[str]:
        """Which of `job_ids` `owner` submitted (a job whose record is gone counts as no one's).
        One round trip, however many ids."""
        with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(keys.job(job_id), "principal")
            principals = pipe.execute()
        return {job_id for job_id, p in zip(job_ids, principals, strict=True) if p == owner}

    def require(self, job_id: str, owner: str | None = None) -> Job:
        job = self.get(job_id, owner)
        if job is None:
            raise JobNotFound(f"No job {job_id!r}.", hint="List your jobs with GET /jobs.")
        return job

    def record(self, job_id: str) -> JobRecord | None:
        """The stored record, typed, for the workers."""
        data = self._redis.hgetall(keys.job(job_id))
        return JobRecord.from_hash(data) if data else None

    def state(self, job_id: str) -> JobState | None:
        value = self._redis.hget(keys.job(job_id), "state")
        return JobState(value) if value else None

    def is_live(self, job_id: str) -> bool:
        return self.state(job_id) in LIVE

    def page(
        self,
        owner: str | None = None,
        state: JobState | None = None,
        kind: JobKind | None = None,
        limit: int = 50,
        page_token: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Callable[[Job], bool] | None = None,
        scan_budget: int = SCAN_BUDGET,
    ) -> JobPage:
        """Most recent first, through the index of (owner, kind, state): O(limit) reads.

        Args:
            owner: only this principal's jobs (None: everyone's).
            page_token: `next_page_token` of the previous page.
            since, until: only jobs submitted in [since, until) (the index's own order).
            where: only jobs it accepts. The others are read past, at most `scan_budget` of
                them a call: a filter that matches rarely then answers a short (even empty)
                page whose token goes on from where the reading stopped, instead of reading
                a principal's whole week of jobs in one request.
        Raises:
            InvalidRequest: the page token is not one this method handed out.
        """
        index = keys.index(owner, kind, state)
        high, after = _parse_page_token(page_token)
        if until is not None:
            # Scores are submit times in microseconds; "(" excludes the bound itself.
            ceiling = int(until.timestamp() * 1e6)
            if high == "+inf" or float(high) >= ceiling:
                high, after = f"({ceiling}", None
        low = int(since.timestamp() * 1e6) if since is not None else "-inf"
        need = limit + 1  # one more than asked tells whether a next page exists
        found: list[tuple[float, str, Job]] = []
        skip = 0  # ties at the cursor's score, already listed, that the next read passes over
        scanned, stopped = 0, False
        while len(found) < need:
            num = need - len(found) + 16  # a few spare for ties with the page token's score
            if where is not None:  # most reads may be passed over: bigger steps, in budget
                num = max(1, min(max(num, 256), scan_budget - scanned))
            rows = self._redis.zrevrangebyscore(
                index, high, low, start=skip, num=num, withscores=True
            )
            exhausted = len(rows) < num
            fetched = len(rows)
            rows = [(m, s) for m, s in rows if not (after and s == high and m >= after)]
            if not rows:
                if exhausted:
                    break
                skip += fetched  # more listed ties than one read returns: read past them
                continue
            skip = 0
            scanned += len(rows)
            for (member, score), view in zip(rows, self._views([m for m, _ in rows]), strict=True):
                if view is None:  # an expired record: drop it from this index for good
                    self._redis.zrem(index, member)
                elif where is None or where(view):
                    found.append((score, member, view))
            high, after = rows[-1][1], rows[-1][0]
            if exhausted:
                break
            if where is not None and scanned >= scan_budget and len(found) < need:
                stopped = True  # the budget is spent: the token goes on from the last read
                break
        jobs = [view for _, _, view in found[:limit]]
        next_page_token = None
        if len(found) > limit:
            score, member, _ = found[limit - 1]
            next_page_token = _page_token(score, member)
        elif stopped:
            next_page_token = _page_token(float(high), str(after))
        return JobPage(jobs=jobs, next_page_token=next_page_token)

    def prune_indexes(self, batch: int = 500) -> int:
        """Drop the ids of expired job records from every listing index; returns how many.

        A record expires on its own (MLSYS_JOB_KEEP_SECONDS after it ended); its entries in the
        listing indexes cannot, so a periodic pass (worker/reaper.py) removes them, and an
        index left empty is gone with them."""
        removed = 0
        for index in self._redis.scan_iter(match=keys.index() + "*", count=1000, _type="zset"):
            start = 0
            while True:
                members = self._redis.zrange(index, start, start + batch - 1)
                if not members:
                    break
                with self._redis.pipeline(transaction=False) as pipe:
                    for job_id in members:
                        pipe.exists(keys.job(job_id))
                    alive = pipe.execute()
                gone = [m for m, exists in zip(members, alive, strict=True) if not exists]
                if gone:
                    removed += self._redis.zrem(index, *gone)
                start += len(members) - len(gone)
        return removed

    def find_prefix(self, prefix: str, owner: str | None = None, limit: int = 20) -> list[Job]:
        """Jobs whose id starts with `prefix` (lowercase hex), most recent first: a scan of
        the owner's index, for people who paste the short id a page or a log showed them."""
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            return []
        matches = [
            (score, member)
            for member, score in self._redis.zscan_iter(
                keys.index(owner), match=f"{prefix}*", count=1000
            )
        ]
        matches.sort(reverse=True)
        views = self._views([member for _, member in matches[:limit]])
        return [view for view in views if view is not None]

    def active_jobs(self) -> list[str]:
        return sorted(self._redis.smembers(keys.active()))

    def units(self, job_id: str) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self._redis.hgetall(keys.units(job_id)).items()}

    def lease_alive(self, job_id: str, unit: str) -> bool:
        return bool(self._redis.exists(keys.lease(job_id, unit)))

    # --- wait -------------------------------------------------------------------------------
    def wait(self, job_id: str, timeout: float, owner: str | None = None) -> Job | None:
        """Block until the job has ended or `timeout` seconds passed (at most
        MAX_WAIT_SECONDS); returns the job as it then is, or None if there is no such job.

        No polling: the script that ends a job pushes its final state onto `job:{id}:done`,
        and this blocks on that list (moving the element onto itself, so every waiter sees
        it, and it stays for later ones)."""
        job = self.get(job_id, owner)
        if job is None or job.state in TERMINAL or timeout <= 0:
            return job
        seconds = min(float(timeout), MAX_WAIT_SECONDS)
        done = keys.done(job_id)
        self._blocking.blmove(done, done, seconds, "RIGHT", "LEFT")
        return self.get(job_id, owner)

    # --- state changes ----------------------------------------------------------------------
    def finish(self, job_id: str, state: JobState, **fields: Any) -> bool:
        """Move a live job to a final state (first writer wins)."""
        values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
        result = self._run(
            "FINISH", (), [job_id, str(state), json.dumps(values), _now(), self._keep_ms]
        )
        return result == 1

    def succeed(self, job_id: str, result: dict[str, Any]) -> bool:
        return self.finish(job_id, JobState.SUCCEEDED, result=result)

    def fail(self, job_id: str, error: BaseException | str, error_type: str | None = None) -> bool:
        message = str(error)
        kind = error_type or (type(error).__name__ if isinstance(error, BaseException) else "Error")
        return self.finish(job_id, JobState.FAILED, error={"type": kind, "message": message})

    def cancel(self, job_id: str, owner: str | None = None) -> Job:
        """Cancel a queued or running job; refuses once the commit has started."""
        self.require(job_id, owner)
        outcome = self._run("CANCEL", (), [job_id, _now(), self._keep_ms])
        if outcome == "missing":
            raise JobNotFound(f"No job {job_id!r}.", hint="List your jobs with GET /jobs.")
        if outcome == "committing":
            raise JobConflict(
                f"Job {job_id} is already committing its output; it can no longer be cancelled.",
                hint="Wait for it to finish.",
            )
        if outcome != "cancelled":
            state = outcome.removeprefix("already:")
            raise JobConflict(
                f"Job {job_id} is already {state}.", hint="Only live jobs can be cancelled."
            )
        return self.require(job_id)

    def begin_commit(self, job_id: str) -> bool:
        """Enter the commit phase unless the job was cancelled first."""
        return self._run("BEGIN_COMMIT", (), [job_id, self._live_ms]) == 1

    def mark_committed(self, job_id: str, rows_written: int) -> None:
        """The job's rows landed: it is past cancel, and a re-run of its commit only finishes."""
        self._run("COMMITTED", (), [job_id, rows_written])

    def record_plan(
        self, job_id: str, shards: list[Any], prepared: dict[str, Any], rows_total: int
    ) -> list[Any]:
        """Freeze the job's plan and declare its shard and commit units. The first writer
        wins: returns the plan every shard reads."""
        stored = self._run(
            "PLAN",
            (),
            [
                job_id,
                json.dumps(shards),
                json.dumps(prepared),
                rows_total,
                len(shards),
                self._live_ms,
            ],
        )
        return json.loads(stored)

    # --- units, leases, progress ------------------------------------------------------------
    def claim(
        self, job_id: str, unit: str, attempt: int, ttl_seconds: float, worker: str = ""
    ) -> Claim:
        """Take `unit` for `attempt` on `worker` (a name shown in the job's shard list)."""
        phase = unit_phase(unit)
        status = self._run(
            "CLAIM",
            (),
            [
                job_id,
                unit,
                attempt,
                int(ttl_seconds * 1000),
                _now(),
                worker,
                str(phase) if phase else "",
                self._live_ms,
            ],
        )
        return Claim(status)

    def renew(self, job_id: str, unit: str, attempt: int, ttl_seconds: float) -> bool:
        args = [job_id, unit, str(attempt), int(ttl_seconds * 1000), self._live_ms]
        return bool(self._run("RENEW", (), args))

    def release(self, job_id: str, unit: str, attempt: int) -> None:
        """Drop this attempt's lease without finishing the unit (it failed or gave up)."""
        self._run("RELEASE", (), [job_id, unit, str(attempt)])

    def mark_done(self, job_id: str, unit: str, attempt: int) -> int:
        """Returns how many shard units are done, or -1 if this attempt was superseded."""
        return int(self._run("DONE", (), [job_id, unit, attempt, _now()]))

    def requeue(self, job_id: str, unit: str, attempt: int) -> None:
        """Record that attempt `attempt` of `unit` is being dispatched."""
        self._run("REQUEUE", (), [job_id, unit, attempt, self._live_ms])

    def give_back(self, job_id: str, unit: str, attempt: int, holder: str = "") -> str:
        """Give back `attempt` of a running `unit` held by `holder` (a worker that stops)
        without spending an attempt: 'given' (attempt + 1 is queued: send it), 'queued' (the
        attempt was never claimed: send it again), 'moved' or 'over' (nothing to do)."""
        args = [job_id, unit, attempt, holder, self._live_ms]
        return str(self._run("GIVE_BACK", (), args))

    def attempts_spent(self, job_id: str, unit: str) -> int:
        """Attempts of `unit` that count against MLSYS_MAX_ATTEMPTS (0 for an unknown unit)."""
        state = self.units(job_id).get(unit)
        return spent_attempts(state) if state else 0

    def set_progress(self, job_id: str, shard: int, rows_done: int) -> None:
        """Rows done by this attempt of a shard; the job shows each shard's best attempt."""
        self._run("PROGRESS", (), [job_id, shard, rows_done, self._live_ms])

    # --- the reaper's bookkeeping -----------------------------------------------------------
    def forget_inactive(self, job_id: str) -> None:
        """Drop a job that ended or expired from the reaper's set of live jobs."""
        self._redis.srem(keys.active(), job_id)

    def first_seen(self, what: str, job_id: str, ttl_seconds: float) -> float:
        """When the reaper first noticed `what` about a job (now, on the first call)."""
        key = keys.seen(what, job_id)
        self._redis.set(key, repr(time.time()), nx=True, px=int(ttl_seconds * 1000))
        value = self._redis.get(key)
        return float(value) if value else time.time()

    def forget_seen(self, what: str, job_id: str) -> None:
        self._redis.delete(keys.seen(what, job_id))

    def once(self, what: str, job_id: str, ttl_seconds: float) -> bool:
        """True the first time in `ttl_seconds` this is asked about a job."""
        key = keys.seen(what, job_id)
        return bool(self._redis.set(key, "1", nx=True, px=int(ttl_seconds * 1000)))

    def lead(self, ttl_seconds: float) -> bool:
        """Take the reaper lock for `ttl_seconds` (one reaper pass at a time)."""
        return bool(self._redis.set(keys.reaper_lock(), "1", nx=True, px=int(ttl_seconds * 1000)))

    @contextmanager
    def exclusive(
        self, what: str, seconds: float, hold_seconds: float | None = None
    ) -> Iterator[redis.lock.Lock]:
        """Hold the lock named `what` (keys.lock) across every worker: a second holder waits
        up to `seconds` for it, then BackendUnavailable (the unit is retried). It lapses after
        `hold_seconds` (default `seconds`) unless its holder extends it (`Lock.reacquire`), so
        a crash never blocks the next one for longer."""
        # Not thread-local: the holder's heartbeat thread extends it.
        lock = self._redis.lock(
            keys.lock(what),
            timeout=hold_seconds or seconds,
            blocking_timeout=seconds,
            thread_local=False,
        )
        if not lock.acquire():
            raise BackendUnavailable(f"{what} is busy for more than {seconds:.0f}s; retrying.")
        try:
            yield lock
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:  # lapsed meanwhile: someone else may hold it
                log.warning("lock %s lapsed before its holder released it", what)

    def announce_worker(self, name: str, slots: int, ttl_seconds: float) -> None:
        """Say that worker `name` runs `slots` units at once, for the next `ttl_seconds`
        (workers repeat it while they live; a dead one drops out when it lapses)."""
        self._redis.zadd(keys.workers(), {f"{int(slots)}|{name}": time.time() + ttl_seconds})

    def worker_slots(self) -> int:
        """Units the live workers run at once, all together (0: no worker announced)."""
        now = time.time()
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(keys.workers(), "-inf", now)
            pipe.zrange(keys.workers(), 0, -1)
            _removed, live = pipe.execute()
        return sum(int(member.partition("|")[0]) for member in live)


def _page_token(score: float, member: str) -> str:
    """Where the next page starts: after `member`, at its score (read by _parse_page_token)."""
    return f"{int(score)}.{member}"


def _parse_page_token(token: str | None) -> tuple[float | str, str | None]:
    if not token:
        return "+inf", None
    score, _, job_id = token.partition(".")
    if not score.isdigit() or not job_id or len(token) > 200:
        raise InvalidRequest(
            f"Invalid page token {token!r}.", hint="Pass the next_page_token of the previous page."
        )
    return float(score), job_id
