"""A unit Celery cancels on a lost broker connection is given back and redispatched at once,
instead of after its lease expires (real Redis, the real job engine and the real app)."""

from __future__ import annotations

import base64
import json

import pytest
from celery.exceptions import Retry

from mlsys.jobs import JobKind, JobStore, NewJob
from mlsys.settings import get_settings
from tests.services import wait_for
from worker import context
from worker.app import PLAN_TASK, QUEUE, celery_app
from worker.dispatch import send_unit
from worker.fairness import redis_keys, route
from worker.reconnect import UnitTask, give_back

pytestmark = pytest.mark.integration


@pytest.fixture
def jobs(settings, redis_url, redis_client, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    for cached in (get_settings, context.settings, context.jobs):
        cached.cache_clear()
    broker, celery_app.conf.broker_url = celery_app.conf.broker_url, redis_url
    yield JobStore.from_settings(get_settings())
    celery_app.conf.broker_url = broker
    for cached in (get_settings, context.settings, context.jobs):
        cached.cache_clear()


def _running_plan(jobs: JobStore) -> str:
    job, _ = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "alice"))
    assert jobs.claim(job.job_id, "plan", 1, 600, "w1:1").ok
    assert jobs.lease_alive(job.job_id, "plan")
    return job.job_id


def _sent(redis_client) -> list[list]:
    """Arguments of the plan messages waiting in any queue."""
    return [
        json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
        for key in redis_keys(QUEUE, get_settings().fair_lanes)
        for raw in redis_client.lrange(key, 0, -1)
    ]


def test_a_cancelled_unit_runs_again_at_once(jobs, redis_client):
    job_id = _running_plan(jobs)
    assert give_back(job_id, "plan", 1) == f"{job_id} plan: attempt 2 dispatched"
    unit = jobs.units(job_id)["plan"]
    assert (unit["state"], int(unit["attempt"])) == ("queued", 2)
    assert not jobs.lease_alive(job_id, "plan")
    assert _sent(redis_client) == [[job_id, 2]]
    # Given back twice (a duplicate cancel): the unit already moved on, nothing more is sent.
    assert give_back(job_id, "plan", 1).endswith("already moved on")
    assert len(_sent(redis_client)) == 1


def test_celerys_cancel_hook_gives_the_unit_back(jobs, redis_client):
    """Celery's Request.cancel calls the task's on_retry without exception info."""
    job_id = _running_plan(jobs)
    celery_app.loader.import_default_modules()  # the worker imports its tasks so
    task = celery_app.tasks[PLAN_TASK]
    assert isinstance(task, UnitTask)
    task.on_retry(Retry("boom"), "a-task-id", [job_id, 1], {}, object())  # a real retry: no
    assert jobs.lease_alive(job_id, "plan")
    task.on_retry(Retry("cancelled by Celery"), "a-task-id", [job_id, 1], {}, None)
    wait_for(lambda: int(jobs.units(job_id)["plan"]["attempt"]) == 2, what="give back")
    assert _sent(redis_client) == [[job_id, 2]]


def test_unacked_messages_a_closing_channel_cannot_restore_are_restored_later(jobs, redis_client):
    """On a lost connection Celery drops the transport's client, then closes the channel, whose
    restore of its unacked messages then cannot reach Redis: they are restored later instead
    of waiting for the visibility timeout (and the close does not raise)."""
    job_id = _running_plan(jobs)
    send_unit(job_id, "plan", 1)
    queue, _ = route(QUEUE, "plan", job_id, get_settings().fair_lanes)
    connection = celery_app.connection_for_write()
    channel = connection.default_channel
    assert channel.basic_get(queue, no_ack=False) is not None  # delivered, not acked
    assert (_sent(redis_client), redis_client.hlen("unacked")) == ([], 1)
    connection._do_close_transport()  # what Connection.collect() does before the close
    channel.close()
    wait_for(lambda: _sent(redis_client) == [[job_id, 1]], what="the message back in its queue")
    assert not redis_client.hlen("unacked")


def test_a_given_back_attempt_counts_as_not_spent(jobs):
    job_id = _running_plan(jobs)
    assert give_back(job_id, "plan", 1, holder="w1:1").endswith("attempt 2 dispatched")
    assert jobs.claim(job_id, "plan", 2, 600, "w2:7").ok
    assert (jobs.units(job_id)["plan"]["given"], jobs.attempts_spent(job_id, "plan")) == (1, 1)
    jobs.requeue(job_id, "plan", 3)  # a transient error's retry: that one is spent
    assert jobs.units(job_id)["plan"]["given"] == 1
    assert jobs.attempts_spent(job_id, "plan") == 2


def test_only_the_worker_holding_the_unit_gives_it_back(jobs, redis_client):
    job_id = _running_plan(jobs)  # held by w1:1
    assert give_back(job_id, "plan", 1, holder="w2:9").endswith("already moved on")
    assert jobs.lease_alive(job_id, "plan")
    assert _sent(redis_client) == []


def test_a_reserved_unit_never_claimed_is_sent_again(jobs, redis_client):
    job, _ = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "alice"))
    assert give_back(job.job_id, "plan", 1, holder="(reserved)").endswith("sent again")
    assert _sent(redis_client) == [[job.job_id, 1]]
    assert jobs.units(job.job_id)["plan"]["attempt"] == 1


class _Request:
    """What a worker's main process knows of a task it runs (celery.worker.request.Request)."""

    def __init__(self, task_id: str, task: str, args: list, worker_pid: int | None) -> None:
        self.id, self.type, self.args, self.worker_pid = task_id, task, args, worker_pid


def test_a_stopping_worker_gives_back_each_unit_its_pool_runs_once(jobs, redis_client, monkeypatch):
    from celery.worker import state

    from worker import shutdown
    from worker.units import worker_name

    monkeypatch.setenv("MLSYS_WORKER_NAME", "worker-abc@localhost")
    job, _ = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "alice"))
    assert jobs.claim(job.job_id, "plan", 1, 600, worker_name(4242)).ok  # its pool process
    running = _Request("t1", PLAN_TASK, [job.job_id, 1], 4242)
    other, _ = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "bob"))
    assert jobs.claim(other.job_id, "plan", 1, 600, "worker-xyz@localhost:7").ok  # not ours
    duplicate = _Request("t2", PLAN_TASK, [other.job_id, 1], None)  # reserved, never claimed
    monkeypatch.setattr(state, "active_requests", {running})
    monkeypatch.setattr(state, "reserved_requests", {running, duplicate})

    done = shutdown.give_back_all()

    assert sorted(done) == sorted(
        [f"{job.job_id} plan: attempt 2 dispatched", f"{other.job_id} plan: already moved on"]
    )
    assert _sent(redis_client) == [[job.job_id, 2]]
    assert jobs.lease_alive(other.job_id, "plan")  # another worker's claim stays its own
