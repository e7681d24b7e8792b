"""Beat through celery-redbeat: two beat processes never double the periodic registry sync."""

from __future__ import annotations

import time

import pytest

from mlsys.artifacts import save_model
from mlsys.registry import read_registry
from tests.integration.jobs_support import make_stack
from tests.models import FEATURES, ScriptedClassifier
from tests.services import celery, celery_worker, process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]


def beat(stack, name: str):
    return process(
        celery("beat", "--loglevel=INFO"), stack.env, stack.cwd, stack.home / f"beat-{name}.log"
    )


def test_two_beats_run_one_sync_per_interval(tmp_path, redis_client, redis_url):
    import pandas as pd

    stack = make_stack(
        tmp_path, redis_url, MLSYS_REGISTRY_SYNC_INTERVAL="1", MLSYS_ENVIRONMENTS="dev"
    )
    model = ScriptedClassifier().fit(pd.DataFrame(columns=FEATURES))
    # Saved to the bucket but never synced by hand: only beat can register it.
    save_model(
        model,
        stack.store,
        stack.settings.bucket_for("dev"),
        "scheduled",
        1,
        target="Survived",
        id_columns=["PassengerId"],
    )
    with celery_worker(stack.env, stack.cwd, concurrency=2), beat(stack, "a"), beat(stack, "b"):
        wait_for(lambda: stack.jobs.list(kind="registry_sync"), timeout=60, what="first sync")
        started = time.monotonic()
        time.sleep(8)
        window = time.monotonic() - started
        syncs = [
            j
            for j in stack.jobs.list(kind="registry_sync", limit=500)
            if j["params"].get("trigger") == "schedule"
        ]
    # One beat holds redbeat's lock: about one sync a second, not two.
    assert 4 <= len(syncs) <= window + 3, f"{len(syncs)} syncs in {window:.1f}s"
    assert all(j["state"] == "succeeded" for j in syncs[1:])
    entries = read_registry(stack.warehouse, stack.settings, "dev")
    assert [(e.model_name, e.version) for e in entries] == [("scheduled", "v1")]
