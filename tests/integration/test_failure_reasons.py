"""A failed unit records a reason a person can read on the job (real Redis)."""

from __future__ import annotations

import pytest

from mlsys.errors import ModelFailed
from mlsys.jobs import JobKind, JobState, JobStore, NewJob
from worker.units import _fail

pytestmark = pytest.mark.integration


@pytest.fixture
def jobs(redis_client, redis_url) -> JobStore:
    return JobStore.from_url(redis_url)


def test_an_unexpected_error_names_its_type_and_an_mlsys_error_reads_as_is(jobs):
    unexpected, _ = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "alice"))
    known, _ = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, "alice"))

    _fail(jobs, unexpected.job_id, "shard:0", KeyError("Fare"), None, attempts=1)
    _fail(jobs, known.job_id, "shard:1", ModelFailed("Forest raised ValueError: x"), None, 1)

    failed = jobs.get(unexpected.job_id)
    assert failed.state == JobState.FAILED
    assert failed.error.type == "KeyError"
    assert failed.error.message == "shard:0: KeyError: 'Fare'"
    assert jobs.get(known.job_id).error.message == "shard:1: Forest raised ValueError: x"
