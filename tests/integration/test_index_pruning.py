"""Job-listing index entries go when their records expire (attack: index entries outlived
their records with no TTL, about 1 KB per job, forever). A real worker's periodic pass over a
real Redis."""

from __future__ import annotations

import pytest

from mlsys.jobs import JobKind, NewJob, keys
from tests.integration.jobs_support import make_stack
from tests.services import celery_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _index_entries(stack) -> int:
    r = stack.jobs.client
    return sum(r.zcard(k) for k in r.scan_iter(match=keys.index() + "*", _type="zset"))


def test_a_worker_prunes_the_listing_indexes_of_expired_jobs(tmp_path, redis_client, redis_url):
    stack = make_stack(
        tmp_path, redis_url, MLSYS_JOB_KEEP_SECONDS="1", MLSYS_INDEX_PRUNE_SECONDS="1"
    )
    ended = []
    for i in range(40):
        job, _ = stack.jobs.create(NewJob(JobKind.PREDICT, {"n": i}, f"p{i % 4}"))
        ended.append(job.job_id)
    live, _ = stack.jobs.create(NewJob(JobKind.PREDICT, {"n": "live"}, "p0"))
    for job_id in ended:
        stack.jobs.succeed(job_id, {})
    assert _index_entries(stack) > 40 * 4  # each job is in several indexes
    wait_for(
        lambda: not any(redis_client.exists(keys.job(j)) for j in ended),
        timeout=30,
        what="the ended records to expire",
    )

    with celery_worker(stack.env, stack.cwd):
        wait_for(lambda: _index_entries(stack) <= 8, timeout=60, what="the indexes to shrink")

    # What is left lists the live job only: it is in each of its indexes, once.
    assert [j.job_id for j in stack.jobs.page().jobs] == [live.job_id]
    assert _index_entries(stack) == len(keys.all_indexes("p0", JobKind.PREDICT, "queued"))
