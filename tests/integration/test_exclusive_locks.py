"""Locks across workers on a real Redis: one registry sync per environment, one landing per
table (`JobStore.exclusive`)."""

from __future__ import annotations

import threading

import pytest

from mlsys.errors import BackendUnavailable
from mlsys.jobs import JobStore

pytestmark = pytest.mark.integration


@pytest.fixture
def jobs(redis_client, redis_url) -> JobStore:
    return JobStore.from_url(redis_url)


def test_a_second_holder_waits_for_the_first_and_then_runs(jobs, redis_client):
    order: list[str] = []
    inside = threading.Event()
    leave = threading.Event()

    def first() -> None:
        with jobs.exclusive("registry-sync:dev", 30):
            order.append("first in")
            inside.set()
            leave.wait(10)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(10)
    assert redis_client.exists("mlsys:lock:registry-sync:dev")
    threading.Timer(0.3, leave.set).start()
    with jobs.exclusive("registry-sync:dev", 30):
        order.append("second in")
    thread.join(10)

    assert order == ["first in", "first out", "second in"]
    assert not redis_client.exists("mlsys:lock:registry-sync:dev")


def test_a_holder_that_never_lets_go_makes_the_next_one_retry_later(jobs):
    with jobs.exclusive("table:p.d.t", 30):
        with pytest.raises(BackendUnavailable, match="table:p.d.t is busy"):
            with jobs.exclusive("table:p.d.t", 0.2):
                pass
        with jobs.exclusive("table:p.d.other", 0.2):  # other tables are not held up
            pass


def test_a_dead_holders_lock_lapses(jobs, redis_client):
    dead = jobs.exclusive("registry-sync:prod", 0.3)
    dead.__enter__()  # its holder dies: never released
    with jobs.exclusive("registry-sync:prod", 5):
        assert redis_client.exists("mlsys:lock:registry-sync:prod")
    assert dead is not None  # held (not collected, which would release it) until here
