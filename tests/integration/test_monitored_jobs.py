"""Monitoring and incremental mode through the real job service: shards on a real worker
profile their input, the commit merges the profiles into the job's result and
prediction_stats, the API serves the history; incremental jobs predict each key once even when
a worker is killed mid-shard."""

from __future__ import annotations

import contextlib
import signal
import time

import numpy as np
import pandas as pd
import pytest
import requests

from mlsys import datasets
from mlsys.artifacts import save_model
from mlsys.registry import sync_registry
from tests.integration.jobs_support import INPUT, make_stack
from tests.models import FEATURES, ScriptedClassifier
from tests.services import celery_worker, serve_wsgi, wait_for
from web import create_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def stack(tmp_path, redis_client, redis_url):
    stack = make_stack(tmp_path, redis_url, MLSYS_BATCH_ROWS="500")
    train = datasets.titanic(3_000, seed=1)
    model = ScriptedClassifier().fit(train[FEATURES])
    save_model(
        model,
        stack.store,
        stack.settings.bucket_for("dev"),
        "watched",
        1,
        target="Survived",
        id_columns=[datasets.ID_COLUMN],
        training_data=train,
        training_target=train["Survived"],
    )
    sync_registry(stack.warehouse, stack.store, stack.settings, "dev")
    return stack


def test_a_sharded_job_reports_drift_and_the_api_serves_its_history(stack):
    steady = datasets.titanic(4_000, seed=2)
    shifted = steady.copy()
    shifted["Pclass"] = np.where(np.arange(len(shifted)) % 2 == 0, 1, shifted["Pclass"])
    shifted.loc[np.arange(len(shifted)) % 10 == 0, "Sex"] = "unknown"
    stack.warehouse.write(steady, INPUT, "WRITE_TRUNCATE")
    shifted_table = INPUT.with_table("shifted")
    stack.warehouse.write(shifted, shifted_table, "WRITE_TRUNCATE")
    with celery_worker(stack.env, stack.cwd, concurrency=2):
        ok = stack.wait(stack.submit("watched", shards=3))
        bad = stack.wait(stack.submit("watched", shards=2, source=shifted_table))
        # The shards' profiles are dropped once the job succeeded (while the worker runs).
        wait_for(lambda: not stack.jobs.client.keys("mlsys:profiles:*"), what="profiles dropped")
    assert ok.state == bad.state == "succeeded"
    calm, moved = ok.result["monitoring"], bad.result["monitoring"]
    assert calm["status"] == "ok" and calm["rows"] == 4_000, calm
    assert moved["status"] == "alert" and moved["rows"] == 4_000, moved
    flagged = {w["feature"] for w in moved["worst"] if w["status"] != "ok"}
    assert {"Pclass", "Sex"} <= flagged

    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    with serve_wsgi(app) as url:
        answer = requests.get(
            f"{url}/models/watched/versions/latest/monitoring", params={"env": "dev"}, timeout=30
        )
        missing = requests.get(
            f"{url}/models/nope/versions/v1/monitoring", params={"env": "dev"}, timeout=30
        )
    assert answer.status_code == 200, answer.text
    history = answer.json()
    assert history["model_version"] == "v1"
    assert [j["job_id"] for j in history["jobs"]] == [ok.job_id, bad.job_id]
    assert [j["status"] for j in history["jobs"]] == ["ok", "alert"]
    sex = next(f for f in history["jobs"][1]["features"] if f["feature"] == "Sex")
    assert sex["unseen_examples"] == ["unknown"] and sex["unseen_rate"] == pytest.approx(0.1)
    assert missing.status_code == 404


def test_incremental_jobs_predict_each_key_once_through_a_kill_9(stack):
    slow = ScriptedClassifier(delay=0.3).fit(pd.DataFrame(columns=FEATURES))
    stack.register(slow, name="slow", version=1)
    stack.warehouse.write(datasets.titanic(3_000, seed=3), INPUT, "WRITE_TRUNCATE")

    def output_keys():
        frame = stack.output_rows()
        return frame[frame["ModelName"] == "slow"]["PassengerId"] if len(frame) else frame

    with celery_worker(stack.env, stack.cwd, concurrency=1, name="doomed") as doomed:
        job_id = stack.submit("slow", shards=2, mode="incremental")
        wait_for(
            lambda: (j := stack.jobs.get(job_id)) and j.progress.rows_done > 0,
            timeout=90,
            what="the first shard to make progress",
        )
        with contextlib.suppress(ProcessLookupError):
            import os

            os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
    with celery_worker(stack.env, stack.cwd, concurrency=2, name="rescuer"):
        first = stack.wait(job_id, timeout=150)
        assert first.state == "succeeded", first.error
        keys = output_keys()
        assert len(keys) == 3_000 and keys.is_unique

        grown = datasets.titanic(3_400, seed=3).iloc[3_000:]
        stack.warehouse.write(grown, INPUT, "WRITE_APPEND")
        second = stack.wait(stack.submit("slow", mode="incremental"))
        started = time.monotonic()
        third = stack.wait(stack.submit("slow", mode="incremental"))
        quick = time.monotonic() - started
    assert second.result["rows_written"] == 400
    assert third.state == "succeeded" and third.result["rows_written"] == 0
    keys = output_keys()
    assert len(keys) == 3_400 and keys.is_unique
    assert quick < 60  # nothing new: no shard scored a row
