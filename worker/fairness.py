"""Which queue and priority each unit of a job is sent with, so that started jobs finish first
and principals take turns.

With one FIFO queue, a burst of 1,000 small jobs runs all 1,000 plans, then all shards, then
all commits: no job finishes until nearly all of them do. Two mechanisms Celery supports on
Redis fix it:

- Priorities. Kombu's Redis transport keeps one list per priority step of a queue and its
  worker pops with one BRPOP over them, highest priority first. Commits go first, then shards,
  then plans: a job that started is finished before another starts.
  https://docs.celeryq.dev/en/stable/userguide/routing.html#redis-message-priorities
- Lanes. Plans (the start of a job) go to one of `MLSYS_FAIR_LANES` queues, chosen by the
  submitting principal's name; a worker consumes every lane and kombu rotates among the queues
  it consumes (round robin), so principals take turns at starting jobs instead of queueing
  behind whoever submitted most. Principals whose names hash to the same lane share it.
"""

from __future__ import annotations

import zlib

from kombu import Queue

#: Kombu's Redis priority steps (its default); 0 is served first.
PRIORITY_STEPS = [0, 3, 6, 9]
COMMIT_PRIORITY, SHARD_PRIORITY, PLAN_PRIORITY = 0, 3, 6


def lane_queue(base: str, principal: str, lanes: int) -> str:
    """The lane a principal's plans go to: `{base}.lane{k}`, stable across processes."""
    return f"{base}.lane{zlib.crc32(principal.encode()) % max(1, lanes)}"


def queues(base: str, lanes: int) -> list[Queue]:
    """Every queue a worker consumes: the shared one and each lane."""
    return [Queue(base), *(Queue(f"{base}.lane{k}") for k in range(max(1, lanes)))]


def route(base: str, unit: str, principal: str | None, lanes: int) -> tuple[str, int]:
    """(queue, priority) of a unit: commits, then shards, then plans (in their lanes)."""
    if unit == "commit":
        return base, COMMIT_PRIORITY
    if unit.startswith("shard:"):
        return base, SHARD_PRIORITY
    if unit == "plan":
        return lane_queue(base, principal or "", lanes), PLAN_PRIORITY
    return base, PLAN_PRIORITY  # registry syncs start work like plans do


def redis_keys(base: str, lanes: int) -> list[str]:
    """Every Redis list holding waiting messages of these queues, most urgent first (kombu's
    layout: `{queue}` for priority 0, `{queue}\\x06\\x16{step}` for the others)."""
    names = [q.name for q in queues(base, lanes)]
    return [
        name if step == 0 else f"{name}\x06\x16{step}" for step in PRIORITY_STEPS for name in names
    ]
