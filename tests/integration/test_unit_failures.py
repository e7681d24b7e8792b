"""How a unit of a job fails on a real worker, submitted over HTTP: a transient backend error
is retried with backoff (and fails the job once MLSYS_MAX_ATTEMPTS are spent); a unit that runs
past the soft time limit fails the job with a reason that names the limit."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from mlsys.client import MlsysClient
from tests.integration.jobs_support import INPUT, OUTPUT, Stack, make_stack
from tests.models import FEATURES, ScriptedClassifier
from tests.services import celery_worker, serve_wsgi, wait_for
from web import create_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TOKEN = "failures-token-0123456789"  # pragma: allowlist secret
ROWS = 8_000


@dataclass
class Service:
    stack: Stack
    client: MlsysClient

    def submit(self, output: str, model: str = "scripted") -> str:
        body = {"env": "dev", "input_table": str(INPUT), "model_name": model}
        body["output_table"] = str(OUTPUT.with_table(output))
        return self.client.submit_predict(**body)["job_id"]

    def worker(self, name: str):
        return celery_worker(self.stack.env, self.stack.cwd, concurrency=1, name=name)

    def log(self, name: str) -> str:
        path = Path(self.stack.env["MLSYS_HOME"]) / f"worker-{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def service(request, tmp_path, redis_client, redis_url) -> Iterator[Service]:
    """The API in this process; each test starts its worker when it is ready for it. The
    worker waits one second for a locked DuckDB file; a test's `settings` mark adds more."""
    marked = request.node.get_closest_marker("settings")
    stack = make_stack(
        tmp_path,
        redis_url,
        MLSYS_API_TOKENS=TOKEN,
        MLSYS_DUCKDB_LOCK_WAIT="1",
        **(marked.kwargs if marked else {}),
    )
    stack.load_table(ROWS)
    stack.register()
    stack.register(ScriptedClassifier(delay=1.0).fit(pd.DataFrame(columns=FEATURES)), "slow")
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    with serve_wsgi(app) as url:
        yield Service(stack, MlsysClient(url, TOKEN))
    stack.celery.close()


class LockHolder:
    """Another process holding the warehouse file (a DuckDB CLI left open) until released."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c",
             "import duckdb, sys\ncon = duckdb.connect(sys.argv[1])\nprint('holding', flush=True)"
             "\nsys.stdin.readline()\ncon.close()\n", str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout.readline().strip() == "holding"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
            assert self.proc.wait(30) == 0


def test_a_transient_backend_error_is_retried_and_the_job_succeeds(service):
    job_id = service.submit("after_retry")
    holder = LockHolder(service.stack.warehouse.path)
    try:
        with service.worker("flaky"):
            # The plan cannot open the warehouse: BackendUnavailable, a transient error.
            wait_for(
                lambda: (
                    f"{job_id}/plan attempt 1: " in service.log("flaky")
                    and "retrying in 2s" in service.log("flaky")
                ),
                timeout=60,
                what="the first attempt to fail and be retried",
            )
            holder.release()
            final = service.client.wait(job_id, interval=0.1, timeout=90)
    finally:
        holder.release()

    assert final["state"] == "succeeded", final["error"]
    assert final["result"]["rows_written"] == ROWS
    rows = service.stack.output_rows(OUTPUT.with_table("after_retry"))
    assert len(rows) == ROWS and rows["PassengerId"].is_unique


def test_a_transient_error_that_outlasts_every_attempt_fails_the_job(service):
    job_id = service.submit("never_written")
    holder = LockHolder(service.stack.warehouse.path)
    try:
        with service.worker("stuck"):
            final = service.client.wait(job_id, interval=0.1, timeout=90)
            log = service.log("stuck")
    finally:
        holder.release()

    assert final["state"] == "failed"
    assert final["error"]["type"] == "BackendUnavailable"
    assert "stayed locked" in final["error"]["message"]
    # MLSYS_MAX_ATTEMPTS=3: two retries, then the job fails.
    assert "retrying in 2s" in log and "retrying in 4s" in log
    assert log.count("; retrying in ") == 2, log
    assert not service.stack.warehouse.exists(OUTPUT.with_table("never_written"))


@pytest.mark.settings(MLSYS_TASK_TIME_LIMIT="6")  # soft limit: 5 s
def test_a_unit_past_the_soft_time_limit_fails_the_job_naming_the_limit(service):
    job_id = service.submit("too_slow", model="slow")  # 8 batches of 1 s > the 5 s soft limit
    with service.worker("slow"):
        final = service.client.wait(job_id, interval=0.1, timeout=90)

    assert final["state"] == "failed"
    assert final["error"]["type"] == "TimeoutError", final["error"]
    assert "MLSYS_TASK_TIME_LIMIT" in final["error"]["message"]
    assert not service.stack.warehouse.exists(OUTPUT.with_table("too_slow"))
