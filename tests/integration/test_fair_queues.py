"""Units leave the queue as a worker takes them: commits, then shards, then plans in turn by
principal. Real Redis, the app's real routing and kombu's real Redis consumer (what a Celery
worker runs), messages taken one at a time as with worker_prefetch_multiplier=1."""

from __future__ import annotations

import kombu
import pytest

from mlsys.settings import get_settings
from worker.app import QUEUE, create_celery
from worker.dispatch import send_unit
from worker.fairness import lane_queue, queues

pytestmark = pytest.mark.integration


@pytest.fixture
def app(settings, redis_url, redis_client, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    app = create_celery(settings.model_copy(update={"redis_url": redis_url}))
    yield app
    app.close()
    get_settings.cache_clear()


def _taken(app, count: int) -> list[tuple[str, str]]:
    """(task name, job id) of `count` messages, in the order a worker would take them."""
    taken: list[tuple[str, str]] = []

    def on_message(body, message):
        taken.append((message.headers["task"].rsplit(".", 1)[-1], body[0][0]))
        message.ack()

    with app.connection_for_read() as connection:
        consumer = kombu.Consumer(
            connection,
            queues=queues(QUEUE, get_settings().fair_lanes),
            callbacks=[on_message],
            accept=["json"],
            prefetch_count=1,
        )
        with consumer:
            while len(taken) < count:
                connection.drain_events(timeout=10)
    return taken


def test_started_jobs_finish_before_new_ones_start(app):
    send_unit("new-job", "plan", app=app, principal="alice")
    send_unit("started-job", "shard:0", app=app)
    send_unit("finishing-job", "commit", app=app)
    send_unit("started-job", "shard:1", app=app)
    assert _taken(app, 4) == [
        ("commit", "finishing-job"),
        ("shard", "started-job"),
        ("shard", "started-job"),
        ("plan", "new-job"),
    ]


def test_principals_take_turns_at_starting_jobs(app):
    lanes = get_settings().fair_lanes
    assert lane_queue(QUEUE, "alice", lanes) != lane_queue(QUEUE, "bob", lanes)
    for i in range(6):
        send_unit(f"alice-{i}", "plan", app=app, principal="alice")
    send_unit("bob-0", "plan", app=app, principal="bob")
    order = [job for _task, job in _taken(app, 7)]
    # bob's one job is among the first two to start, not behind alice's six
    assert order.index("bob-0") <= 1
    assert [j for j in order if j.startswith("alice")] == [f"alice-{i}" for i in range(6)]
