"""The schedule store on a real Redis: an update is one read-modify-write of the stored record."""

from __future__ import annotations

import pytest

from mlsys.errors import ScheduleNotFound
from mlsys.jobs import keys
from mlsys.jobs.schedules import Schedule, ScheduleStore, new_schedule_id

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis_client) -> ScheduleStore:
    return ScheduleStore(redis_client)


def test_updates_from_two_stale_copies_both_land(store):
    created = store.create(Schedule(new_schedule_id(), "alice", {}, interval_seconds=3600))
    seen_by_api, seen_by_beat = store.get(created.schedule_id), store.get(created.schedule_id)

    store.update(seen_by_beat, paused=True, suspended="alice lost the predict scope")
    returned = store.update(seen_by_api, name="nightly")  # read before the pause

    stored = store.get(created.schedule_id)
    assert (stored.paused, stored.suspended, stored.name) == (
        True,
        "alice lost the predict scope",
        "nightly",
    )
    assert returned == stored


def test_an_update_of_a_deleted_schedule_does_not_bring_it_back(store, redis_client):
    created = store.create(Schedule(new_schedule_id(), "alice", {}, interval_seconds=3600))
    store.delete(created.schedule_id)

    with pytest.raises(ScheduleNotFound):
        store.update(created, paused=True)

    assert store.get(created.schedule_id) is None
    assert not redis_client.exists(keys.schedule(created.schedule_id))
