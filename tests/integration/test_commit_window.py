"""The commit window on real workers, jobs submitted over HTTP: a worker killed (kill -9) in
the middle of a commit, before or after its rows landed, and a cancel racing the commit. A
launcher (tests/paused_worker.py) stops the commit at a named point so the test can act there.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from mlsys.client import ApiError, MlsysClient
from tests.integration.jobs_support import INPUT, OUTPUT, Stack, make_stack
from tests.models import FEATURES, ScriptedClassifier
from tests.services import celery_worker, kill_group, process, serve_wsgi, wait_for
from web import create_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TOKEN = "window-token-0123456789"  # pragma: allowlist secret
ROWS = 6_000


@dataclass
class Service:
    stack: Stack
    client: MlsysClient
    gate: Path

    def submit(self, output: str = "predictions", model: str = "scripted", **extra) -> str:
        body = {"env": "dev", "input_table": str(INPUT), "model_name": model, "shards": 2}
        body["output_table"] = str(OUTPUT.with_table(output))
        return self.client.submit_predict(**{**body, **extra})["job_id"]

    @contextlib.contextmanager
    def paused_worker(self, point: str, name: str = "paused") -> Iterator:
        """A worker whose commits stop at `point` (see tests/paused_worker.py)."""
        env = {
            **self.stack.env,
            "MLSYS_WORKER_NAME": name,
            "MLSYS_TEST_COMMIT_PAUSE": point,
            "MLSYS_TEST_COMMIT_GATE": str(self.gate),
        }
        args = [sys.executable, "-m", "tests.paused_worker", "-A", "worker", "worker",
                "--loglevel=INFO", "--concurrency=2", f"--hostname={name}@%h",
                "--without-mingle", "--without-gossip"]  # fmt: skip
        log = self.stack.home / f"worker-{name}.log"
        with process(args, env, self.stack.cwd, log) as proc:
            yield proc

    def worker(self, name: str = "rescuer"):
        return celery_worker(self.stack.env, self.stack.cwd, concurrency=2, name=name)

    def reached(self, job_id: str, point: str) -> None:
        marker = self.gate / f"{job_id}.{point}"
        wait_for(marker.exists, timeout=90, what=f"job {job_id}'s commit to stop at {point}")

    def release(self, job_id: str) -> None:
        (self.gate / f"{job_id}.go").touch()

    def wait(self, job_id: str) -> dict:
        return self.client.wait(job_id, interval=0.1, timeout=120)

    def rows(self, output: str = "predictions") -> pd.DataFrame:
        return self.stack.output_rows(OUTPUT.with_table(output))


@pytest.fixture
def service(tmp_path, redis_client, redis_url) -> Iterator[Service]:
    stack = make_stack(tmp_path, redis_url, MLSYS_API_TOKENS=TOKEN)
    stack.load_table(ROWS)
    stack.register()
    stack.register(ScriptedClassifier(delay=0.06).fit(pd.DataFrame(columns=FEATURES)), "slow")
    gate = tmp_path / "gate"
    gate.mkdir()
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    with serve_wsgi(app) as url:
        yield Service(stack, MlsysClient(url, TOKEN), gate)
    stack.celery.close()


def _assert_exact(rows: pd.DataFrame, job_id: str, expected: int = ROWS) -> None:
    mine = rows[rows["JobId"] == job_id]
    assert len(mine) == expected, f"{len(mine)} rows of job {job_id} for {expected} inputs"
    assert mine["PassengerId"].is_unique, "duplicated rows"


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before", "after"], ids=["before-landing", "after-landing"])
def test_kill_9_inside_the_commit_lands_the_rows_exactly_once(service, point):
    # Rows of an earlier job are in the output already; they must stay as they are.
    with service.worker("first"):
        earlier = service.submit()
        assert service.wait(earlier)["state"] == "succeeded"
    job_id = service.submit()
    with service.paused_worker(point) as victim:
        service.reached(job_id, point)
        landed = service.rows()
        kill_group(victim)  # the machine dies mid-commit
    # The rows landed or not, as the point says; the job does not know either way.
    assert len(landed[landed["JobId"] == job_id]) == (ROWS if point == "after" else 0)
    assert service.client.job(job_id)["state"] == "running"

    with service.worker():  # its reaper finds the commit's lease expired and redoes it
        final = service.wait(job_id)

    assert final["state"] == "succeeded", final["error"]
    assert final["result"]["rows_written"] == ROWS
    assert service.stack.jobs.units(job_id)["commit"]["attempt"] >= 2
    rows = service.rows()
    assert set(rows["JobId"]) == {earlier, job_id}
    _assert_exact(rows, earlier)
    _assert_exact(rows, job_id)
    assert service.stack.staging(job_id) == []


def test_a_cancel_before_the_commit_begins_wins_and_lands_nothing(service):
    job_id = service.submit()
    with service.paused_worker("begin"):
        service.reached(job_id, "begin")  # every shard is staged; the commit is about to start
        cancelled = service.client.cancel(job_id)
        service.release(job_id)
        wait_for(lambda: service.stack.settled(job_id), timeout=60, what="the commit to stop")
        wait_for(lambda: service.stack.staging(job_id) == [], timeout=60, what="cleanup")

    assert cancelled["state"] == "cancelled"
    assert service.client.job(job_id)["state"] == "cancelled"
    assert not service.stack.warehouse.exists(OUTPUT.with_table("predictions"))


def test_a_cancel_once_the_commit_began_is_refused_and_the_job_lands(service):
    job_id = service.submit()
    with service.paused_worker("before"):
        service.reached(job_id, "before")
        with pytest.raises(ApiError, match="already committing") as refused:
            service.client.cancel(job_id)
        service.release(job_id)
        final = service.wait(job_id)

    assert refused.value.status == 409
    assert final["state"] == "succeeded", final["error"]
    _assert_exact(service.rows(), job_id)


def test_cancel_of_a_running_sharded_job_leaves_the_earlier_rows_as_they_were(service):
    with service.worker("first"):
        earlier = service.submit(shards=1)
        assert service.wait(earlier)["state"] == "succeeded"
        before = service.rows().sort_values("PassengerId").reset_index(drop=True)
        job_id = service.submit(model="slow", shards=3)
        wait_for(
            lambda: service.client.job(job_id)["progress"]["rows_done"] > 0,
            timeout=60,
            what="the shards to start",
        )
        assert service.client.cancel(job_id)["state"] == "cancelled"
        wait_for(lambda: service.stack.settled(job_id), timeout=60, what="the shards to stop")
        wait_for(lambda: service.stack.staging(job_id) == [], timeout=60, what="cleanup")

    after = service.rows().sort_values("PassengerId").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before)
    assert set(after["JobId"]) == {earlier}
    assert service.client.job(job_id)["state"] == "cancelled"
