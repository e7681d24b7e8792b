"""A worker's log stays readable: a model saved with n_jobs=-1 predicts in a Celery pool
process without one joblib warning per batch."""

from __future__ import annotations

import pytest

from mlsys import datasets
from mlsys.cli.demo import titanic_pipeline
from tests.integration.jobs_support import make_stack
from tests.services import celery_worker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_an_n_jobs_minus_one_model_predicts_without_a_warning_per_batch(tmp_path, redis_url):
    stack = make_stack(tmp_path, redis_url, MLSYS_BATCH_ROWS="500")
    stack.load_table(3_000)
    train = datasets.titanic(2_000, seed=3)
    model = titanic_pipeline(n_estimators=5, n_jobs=-1)
    stack.register(model.fit(train.drop(columns=["Survived"]), train["Survived"]), name="forest")
    log = tmp_path / "worker.log"

    with celery_worker(stack.env, stack.cwd, concurrency=1, log=log):
        job = stack.wait(stack.submit("forest"))

    assert job.state == "succeeded", job.error
    assert "n_jobs" not in log.read_text()  # joblib's "... setting n_jobs=1", per batch
