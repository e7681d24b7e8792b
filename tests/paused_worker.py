"""`python -m tests.paused_worker -A worker worker ...`: a real Celery worker whose commits stop
at one point of the commit window until the test lets them go, or kills the worker there.

MLSYS_TEST_COMMIT_PAUSE names the point: `begin` (before the job enters its commit phase, when
a cancel still wins), `before` (in the phase, before the warehouse commit) or `after` (the rows
landed, the job does not know yet). The pool process writes `{job_id}.{point}` (its pid) into
MLSYS_TEST_COMMIT_GATE and waits for `{job_id}.go` there. Production code carries no hook: this
launcher wraps the calls around the window before Celery starts (the pool forks after it).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import worker.tasks as tasks
from mlsys.jobs import JobStore

POINT = os.environ.get("MLSYS_TEST_COMMIT_PAUSE", "before")
GATE = Path(os.environ.get("MLSYS_TEST_COMMIT_GATE", "."))


def hold(point: str, job_id: str) -> None:
    if point != POINT:
        return
    (GATE / f"{job_id}.{point}").write_text(str(os.getpid()))
    while not (GATE / f"{job_id}.go").exists():
        time.sleep(0.02)


_begin_commit = JobStore.begin_commit
_commit_job = tasks.commit_job


def begin_commit(self, job_id: str) -> bool:
    hold("begin", job_id)
    return _begin_commit(self, job_id)


def commit_job(prepared, warehouse, job_id, *args, **kwargs):
    hold("before", job_id)
    landed = _commit_job(prepared, warehouse, job_id, *args, **kwargs)
    hold("after", job_id)
    return landed


JobStore.begin_commit = begin_commit
tasks.commit_job = commit_job

if __name__ == "__main__":
    from celery.__main__ import main

    sys.argv[0] = "celery"
    sys.exit(main())
