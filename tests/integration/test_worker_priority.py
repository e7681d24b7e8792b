"""A real worker's pool processes run below the API's CPU priority (MLSYS_WORKER_NICE), so a
burst of jobs on a shared machine does not slow the answers to submits; its main process, which
holds the broker connection, keeps its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.services import celery_worker, isolated_env, repo_root, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _nice(pid: int) -> int:
    # /proc/PID/stat: the 19th field is the nice value (after the parenthesised name).
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _pool(pid: int, count: int) -> list[int] | None:
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").glob("*")
        for child in (task / "children").read_text().split()
    ]
    return children if len(children) >= count else None


@pytest.mark.parametrize(("setting", "lowered"), [(None, 10), ("3", 3), ("0", 0)])
def test_pool_processes_lower_their_priority(tmp_path, redis_url, setting, lowered):
    env = isolated_env(REDIS_URL=redis_url, MLSYS_HOME=str(tmp_path / "home"))
    if setting is not None:
        env["MLSYS_WORKER_NICE"] = setting
    own = os.getpriority(os.PRIO_PROCESS, 0)
    log = tmp_path / "worker.log"
    with celery_worker(env, repo_root(), concurrency=2, log=log) as worker:
        wait_for(lambda: "ready." in log.read_text(), timeout=60, what="the worker")
        pool = wait_for(lambda: _pool(worker.pid, 2), timeout=30, what="two pool processes")
        # A pool process lowers itself as it starts: wait for the signal handler to have run.
        wait_for(lambda: {_nice(pid) for pid in pool} == {own + lowered}, timeout=30)
        assert _nice(worker.pid) == own
