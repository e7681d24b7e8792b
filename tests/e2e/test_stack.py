"""The whole stack as a user runs it: the documented commands as subprocesses, driven by HTTP."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests

from mlsys.artifacts import save_model
from tests.integration.jobs_support import make_stack
from tests.models import FEATURES, ScriptedClassifier
from tests.services import free_port, process, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]
BIN = Path(sys.executable).parent
TOKEN = "e2e-token-0123456789"  # pragma: allowlist secret


@pytest.fixture
def stack(tmp_path, redis_client, redis_url):
    port = free_port()
    stack = make_stack(
        tmp_path,
        redis_url,
        MLSYS_REGISTRY_SYNC_INTERVAL="2",
        MLSYS_API_TOKENS=TOKEN,
        MLSYS_API_TOKEN=TOKEN,
        MLSYS_API_URL=f"http://127.0.0.1:{port}",
    )
    # What a user does first: the demo makes the table and registers titanic-survival/v1.
    demo = subprocess.run(
        [str(BIN / "mlsys"), "demo", "--rows", "30000"],
        cwd=stack.cwd,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stderr
    commands = {
        "web": [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "web:create_app()",
        ],
        "worker": [
            str(BIN / "celery"),
            "-A",
            "worker",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
        ],
        "beat": [str(BIN / "celery"), "-A", "worker", "beat", "--loglevel=INFO"],
    }
    with contextlib.ExitStack() as running:
        for name, args in commands.items():
            running.enter_context(process(args, stack.env, stack.cwd, tmp_path / f"{name}.log"))
        stack.url = f"http://127.0.0.1:{port}"
        stack.http = requests.Session()
        stack.http.headers["Authorization"] = f"Bearer {TOKEN}"
        wait_for(lambda: _up(stack.url), timeout=60, what="the API")
        yield stack


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.RequestException:
        return False


def _follow(stack, job_id: str, timeout: float = 120) -> tuple[dict, list[float]]:
    seen: list[float] = []

    def done():
        job = stack.http.get(f"{stack.url}/jobs/{job_id}", timeout=5).json()
        seen.append(job["progress"]["percent"])
        return job if job["state"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, timeout=timeout, interval=0.05, what=f"job {job_id}"), seen


def test_submit_poll_and_read_the_registry_over_http(stack):
    assert requests.get(f"{stack.url}/jobs", timeout=5).status_code == 401
    body = {
        "env": "dev",
        "input_table": "mlsys-local.titanic.passengers",
        "output_table": "mlsys-local.titanic.e2e",
        "model_name": "titanic-survival",
        "model_version": "v1",
        "shards": 3,
    }
    submitted = stack.http.post(f"{stack.url}/predict", json=body, timeout=10)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    assert submitted.headers["Location"].endswith(f"/jobs/{job_id}")
    job, percents = _follow(stack, job_id)
    assert job["state"] == "succeeded", job["error"]
    assert job["result"]["rows_written"] == 30_000
    assert job["progress"]["percent"] == 100.0 and len(job["shards"]) == 3
    assert percents == sorted(percents), f"progress went backwards: {percents}"
    assert percents[-1] == 100.0

    # The seed's GET spelling enqueues the same kind of job and, as the seed did, answers once
    # it is done (200), or 202 past MLSYS_SYNC_WAIT_SECONDS on a slow machine.
    legacy = stack.http.get(f"{stack.url}/predict", params={**body, "shards": None}, timeout=90)
    assert legacy.status_code in (200, 202), legacy.text
    legacy_id = legacy.json()["job_id"]
    if legacy.status_code == 200:
        assert legacy.json()["status"] == "success"
    assert _follow(stack, legacy_id)[0]["state"] == "succeeded"
    listed = stack.http.get(f"{stack.url}/jobs", params={"kind": "predict"}, timeout=5).json()
    assert {job_id, legacy_id} <= {j["job_id"] for j in listed["jobs"]}

    # The CLI reads the output the jobs wrote: 2 x 30,000 rows, one JobId each.
    query = subprocess.run(
        [
            str(BIN / "mlsys"),
            "query",
            "SELECT COUNT(*) AS n, COUNT(DISTINCT JobId) AS jobs FROM `mlsys-local.titanic.e2e`",
        ],
        cwd=stack.cwd,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert query.returncode == 0, query.stderr
    assert query.stdout.split()[-2:] == ["60000", "2"]

    # A new version saved to the bucket (and not synced by anyone else) shows up through
    # beat's periodic registry sync.
    versions_url = f"{stack.url}/models/titanic-survival"

    def versions() -> list[str]:
        listing = stack.http.get(versions_url, params={"env": "dev"}, timeout=5).json()
        return [v["model_version"] for v in listing["versions"]]

    assert versions() == ["v1"]
    model = ScriptedClassifier().fit(pd.DataFrame(columns=FEATURES))
    save_model(model, stack.store, stack.settings.bucket_for("dev"), "titanic-survival", 2,
               target="Survived", id_columns=["PassengerId"])  # fmt: skip
    wait_for(lambda: "v2" in versions(), timeout=60, what="beat's sync to register v2")
    syncs = stack.http.get(f"{stack.url}/jobs", params={"kind": "registry_sync"}, timeout=5)
    scheduled = [j for j in syncs.json()["jobs"] if j["params"].get("trigger") == "schedule"]
    assert scheduled and any(j["state"] == "succeeded" for j in scheduled), syncs.json()


def test_cancel_mid_job_over_http_leaves_the_output_as_it_was(stack):
    slow = ScriptedClassifier(delay=0.05).fit(pd.DataFrame(columns=FEATURES))
    stack.register(slow, name="slow", version=1)
    body = {
        "env": "dev",
        "input_table": "mlsys-local.titanic.passengers",
        "output_table": "mlsys-local.titanic.cancelled",
        "model_name": "slow",
        "shards": 2,
    }
    job_id = stack.http.post(f"{stack.url}/predict", json=body, timeout=10).json()["job_id"]
    wait_for(
        lambda: (
            stack.http.get(f"{stack.url}/jobs/{job_id}", timeout=5).json()["progress"]["rows_done"]
            > 0
        ),
        timeout=60,
        what="progress",
    )
    cancelled = stack.http.delete(f"{stack.url}/jobs/{job_id}", timeout=5)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert stack.http.delete(f"{stack.url}/jobs/{job_id}", timeout=5).status_code == 409
    wait_for(lambda: stack.settled(job_id), timeout=30, what="shards to stop")
    wait_for(lambda: stack.staging(job_id) == [], timeout=30, what="staging cleanup")
    assert not stack.warehouse.exists(stack.warehouse_table("cancelled"))
    assert stack.http.get(f"{stack.url}/jobs/{job_id}", timeout=5).json()["state"] == "cancelled"
    assert stack.http.get(f"{stack.url}/jobs/nope", timeout=5).status_code == 404
