"""Locks across workers on a real Redis: one registry sync per environment, one landing per
table (`JobStore.exclusive`), held by a unit for as long as its lease (`UnitRun.exclusive`)."""

from __future__ import annotations

import threading
import time

import pytest

from mlsys.errors import BackendUnavailable
from mlsys.jobs import JobKind, JobStore, NewJob
from worker.units import UnitRun

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


def test_a_units_lock_lasts_as_long_as_its_lease(jobs, redis_client, settings):
    quick = settings.model_copy(update={"recovery_timeout": 0.6})
    job_id = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "alice"))[0].job_id
    key = "mlsys:lock:table:p.d.t"
    # A running unit as `claimed` makes it (which would record these assertions' failures on
    # the job instead of raising them): its lease, renewed by its heartbeat.
    assert jobs.claim(job_id, "plan", 1, quick.recovery_timeout, "w:1").ok
    run = UnitRun(jobs, quick, job_id, "plan", 1)
    threading.Thread(target=run._heartbeat, daemon=True).start()
    try:
        with run.exclusive("table:p.d.t", 30):
            # Its time to live is the lease's, not the 30 s a next holder would wait...
            assert 0 < redis_client.pttl(key) <= 600
            # ... and the unit's heartbeat extends it with the lease while the unit runs.
            time.sleep(3 * quick.recovery_timeout)
            assert jobs.lease_alive(job_id, "plan") and redis_client.exists(key)

            run._stop.set()  # the worker is killed: neither lease nor lock is renewed
            with jobs.exclusive("table:p.d.t", 5):  # the next holder gets it once both lapse
                assert not jobs.lease_alive(job_id, "plan")
    finally:
        run._stop.set()
