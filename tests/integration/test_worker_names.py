"""Two workers on instances that both have the hostname `localhost` (as on Cloud Run) are two
workers: each announces its own slots, each answers a ping under a name of its own."""

from __future__ import annotations

import pytest

from mlsys.jobs import JobStore, keys
from tests.cloudrun import cloud_run_worker
from tests.integration.jobs_support import make_stack
from tests.services import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _pinged(stack) -> set[str]:
    replies = stack.celery.control.ping(timeout=1.0) or []
    return {name for reply in replies for name in reply}


def test_two_workers_on_localhost_are_counted_as_two(tmp_path, redis_client, redis_url):
    stack = make_stack(tmp_path, redis_url)
    jobs = JobStore.from_settings(stack.settings)
    with (
        cloud_run_worker(stack.env, tmp_path / "worker-a.log", concurrency=1),
        cloud_run_worker(stack.env, tmp_path / "worker-b.log", concurrency=2),
    ):
        wait_for(lambda: len(_pinged(stack)) == 2, timeout=120, what="two workers answering")
        names = _pinged(stack)
        wait_for(lambda: jobs.worker_slots() == 3, timeout=60, what="both announcements")
        announced = redis_client.zrange(keys.workers(), 0, -1)
    stack.celery.close()

    assert all(name.endswith("@localhost") for name in names), names
    assert all(name.startswith("worker-") for name in names), names
    # Keyed by the unique node names: one announcement each, with that worker's slots.
    slots = {name: int(count) for count, _, name in (a.partition("|") for a in announced)}
    assert set(slots) == names
    assert sorted(slots.values()) == [1, 2]
