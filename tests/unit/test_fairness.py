"""Queues and priorities of job units: commits first, then shards, then plans in lanes."""

from __future__ import annotations

import pytest

from worker.fairness import (
    COMMIT_PRIORITY,
    PLAN_PRIORITY,
    SHARD_PRIORITY,
    lane_queue,
    queues,
    route,
)

pytestmark = pytest.mark.unit


def test_started_jobs_come_first():
    assert COMMIT_PRIORITY < SHARD_PRIORITY < PLAN_PRIORITY  # kombu on Redis: 0 is served first
    assert route("mlsys", "commit", "alice", 8) == ("mlsys", COMMIT_PRIORITY)
    assert route("mlsys", "shard:3", "alice", 8) == ("mlsys", SHARD_PRIORITY)
    assert route("mlsys", "sync", None, 8) == ("mlsys", PLAN_PRIORITY)


def test_plans_go_to_the_lane_of_their_principal():
    queue, priority = route("mlsys", "plan", "alice", 8)
    assert priority == PLAN_PRIORITY
    assert queue == lane_queue("mlsys", "alice", 8) == route("mlsys", "plan", "alice", 8)[0]
    lanes = {lane_queue("mlsys", f"principal-{i}", 8) for i in range(200)}
    assert lanes == {q.name for q in queues("mlsys", 8)} - {"mlsys"}


def test_every_lane_is_consumed():
    assert [q.name for q in queues("mlsys", 3)] == [
        "mlsys",
        "mlsys.lane0",
        "mlsys.lane1",
        "mlsys.lane2",
    ]
