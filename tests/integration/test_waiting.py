"""Seed callers that expect completion, through the real stack: gunicorn (two processes),
Redis, a Celery worker and DuckDB. The seed's GET aliases answer when the job ended, past
MLSYS_SYNC_WAIT_SECONDS they answer 202, `Prefer: wait=N` is honoured and reported, and
requests waiting for jobs leave the API free for everyone else."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import requests

from mlsys import datasets
from mlsys.artifacts import save_model
from mlsys.ids import TableId
from mlsys.registry import sync_registry
from mlsys.settings import Settings
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse
from tests.models import ScriptedClassifier
from tests.services import (
    celery_worker,
    free_port,
    gunicorn_command,
    isolated_env,
    process,
    repo_root,
    wait_for,
)

pytestmark = pytest.mark.integration

BOUND = 15  # MLSYS_SYNC_WAIT_SECONDS of this stack
ROWS = 2_000
INPUT = TableId("mlsys-local", "titanic", "passengers")
POISONED = INPUT.with_table("poisoned")


class Api:
    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(
            f"{self.url}{path}", timeout=kwargs.pop("timeout", BOUND + 30), **kwargs
        )

    def post(self, path: str, body: dict, **kwargs) -> requests.Response:
        return requests.post(f"{self.url}{path}", json=body, timeout=BOUND + 30, **kwargs)

    def rows(self, table: TableId) -> int:
        warehouse = open_warehouse(settings=self.settings)
        try:
            return warehouse.count_rows(table) if warehouse.exists(table) else 0
        finally:
            warehouse.close()

    def finished(self, job_id: str) -> dict:
        return wait_for(
            lambda: (
                (j := self.get(f"/jobs/{job_id}").json())["state"]
                in ("succeeded", "failed", "cancelled")
                and j
            ),
            timeout=120,
            interval=0.2,
            what=f"job {job_id}",
        )


@pytest.fixture(scope="module")
def api(tmp_path_factory, redis_url):
    """gunicorn (2 workers x 32 threads) + one Celery worker, on a DuckDB home with a fast and
    a slow registered model."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    tmp = tmp_path_factory.mktemp("waiting")
    values = {
        "MLSYS_HOME": str(tmp / "home"),
        "REDIS_URL": redis_url,
        "MLSYS_SYNC_WAIT_SECONDS": str(BOUND),
        "MLSYS_BATCH_ROWS": "500",
        "MLSYS_REGISTRY_SYNC_INTERVAL": "0",
        "MLSYS_OPEN_GET_SUBMITS": "true",  # auth is off here; the seed's GET aliases may run
        "MLSYS_SUBMIT_RATE_LIMIT": "1000 per minute",  # twenty callers at once are expected
    }
    settings = Settings(_env_file=None, **values)
    warehouse = open_warehouse(settings=settings)
    store = open_store(settings=settings)
    passengers = datasets.titanic(ROWS)
    warehouse.write(passengers, INPUT, "WRITE_TRUNCATE")
    poisoned = passengers.copy()
    poisoned.loc[ROWS - 10, "Sex"] = "poison"
    warehouse.write(poisoned, POISONED, "WRITE_TRUNCATE")
    bucket = settings.bucket_for("dev")
    ids = {"target": "Survived", "id_columns": ["PassengerId"]}
    empty = pd.DataFrame(columns=["Sex", "Pclass"])
    save_model(ScriptedClassifier().fit(empty), store, bucket, "fast", **ids)
    # 4 batches of 500 rows at 20 s each: far longer than BOUND.
    save_model(ScriptedClassifier(delay=20.0).fit(empty), store, bucket, "slow", **ids)
    sync_registry(warehouse, store, settings, "dev")
    warehouse.close()

    env = isolated_env()
    env.update(values)
    port = free_port()
    gunicorn = gunicorn_command(port, 2, 32, "--timeout", "60")
    url = f"http://127.0.0.1:{port}"
    with (
        process(gunicorn, env, repo_root(), tmp / "gunicorn.log"),
        celery_worker(env, repo_root(), concurrency=2, log=tmp / "worker.log"),
    ):
        wait_for(lambda: _up(url), timeout=60, what="gunicorn")
        client = Api(url, settings)
        # Warm the worker up (imports, first model load) before anything is timed by a bound.
        warm = client.post("/predict", _predict("fast", "warm-up"))
        assert client.finished(warm.json()["job_id"])["state"] == "succeeded"
        yield client


def _predict(model: str, output: str, source: TableId = INPUT) -> dict:
    return {
        "env": "dev",
        "input_table": str(source),
        "output_table": str(INPUT.with_table(output)),
        "model_name": model,
        "model_version": "v1",
    }


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.RequestException:
        return False


def test_seed_get_predict_answers_200_once_the_rows_are_written(api):
    response = api.get("/predict", params=_predict("fast", "seed_get"))

    assert api.rows(INPUT.with_table("seed_get")) == ROWS  # read right after the answer
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success" and "predictions" in body["message"]
    assert body["result"]["rows_written"] == ROWS
    assert response.headers["Content-Location"] == f"/jobs/{body['job_id']}"
    assert api.get(f"/jobs/{body['job_id']}").json()["state"] == "succeeded"


def test_seed_get_model_registry_answers_when_synced(api):
    response = api.get("/model-registry", params={"env": "dev"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success" and body["result"]["scanned"] == 2


def test_a_failing_job_answers_the_seeds_error_status_with_the_reason(api):
    response = api.get("/predict", params=_predict("fast", "seed_fail", POISONED))

    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["state"] == "failed" and problem["job_id"] in problem["detail"]
    assert "poison" in problem["reason"]
    assert api.rows(INPUT.with_table("seed_fail")) == 0


def test_a_job_longer_than_the_bound_answers_202_and_can_be_polled(api):
    response = api.get("/predict", params=_predict("slow", "seed_slow"))

    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert response.headers["Location"] == f"/jobs/{job_id}"
    assert response.json()["state"] in ("queued", "running")
    polled = api.get(response.headers["Location"]).json()
    assert polled["job_id"] == job_id and polled["state"] in ("queued", "running")
    assert api.rows(INPUT.with_table("seed_slow")) == 0
    requests.delete(f"{api.url}/jobs/{job_id}", timeout=10)  # frees the worker
    assert api.finished(job_id)["state"] == "cancelled"


def test_prefer_wait_is_honoured_and_reported(api):
    waited = api.post("/predict", _predict("fast", "prefer"), headers={"Prefer": "wait=30"})
    assert waited.status_code == 200, waited.text
    # Asked 30, bounded by MLSYS_SYNC_WAIT_SECONDS.
    assert waited.headers["Preference-Applied"] == f"wait={BOUND}"
    assert waited.json()["state"] == "succeeded" and waited.json()["result"]["rows_written"]
    assert api.rows(INPUT.with_table("prefer")) == ROWS

    synced = api.post("/model-registry", {"env": "dev"}, headers={"Prefer": "wait=10"})
    assert synced.status_code == 200 and synced.headers["Preference-Applied"] == "wait=10"
    assert synced.json()["state"] == "succeeded"

    plain = api.post("/predict", _predict("fast", "no_prefer"))
    assert plain.status_code == 202 and "Preference-Applied" not in plain.headers
    api.finished(plain.json()["job_id"])

    short = api.post("/predict", _predict("slow", "prefer_slow"), headers={"Prefer": "wait=1"})
    assert short.status_code == 202 and short.headers["Preference-Applied"] == "wait=1"
    requests.delete(f"{api.url}/jobs/{short.json()['job_id']}", timeout=10)
    api.finished(short.json()["job_id"])


def test_twenty_waiting_requests_leave_job_status_answering(api):
    other = api.post("/predict", _predict("fast", "other")).json()["job_id"]
    api.finished(other)
    # Twenty seed callers wait on one slow job (one idempotency key, so one job).
    key = {"Idempotency-Key": "twenty-waiters"}
    params = _predict("slow", "twenty")
    with ThreadPoolExecutor(20) as pool:
        waiting = [pool.submit(api.get, "/predict", params=params, headers=key) for _ in range(20)]
        job_id = wait_for(
            lambda: (
                (found := api.get("/jobs", params={"kind": "predict", "limit": 50}).json())
                and next((j["job_id"] for j in found["jobs"] if "twenty" in str(j["params"])), None)
            ),
            what="the slow job",
        )
        # While they wait, others' status and listing answer.
        for _ in range(5):
            status = api.get(f"/jobs/{other}", timeout=10)
            assert status.status_code == 200 and status.json()["state"] == "succeeded"
        assert api.get("/health", timeout=10).ok
        assert not all(f.done() for f in waiting)  # they are still waiting
        requests.delete(f"{api.url}/jobs/{job_id}", timeout=10)
        answers = [f.result() for f in waiting]
    # Cancelled: every waiter learns it (the seed's error status), or was told 202 at once.
    assert {a.status_code for a in answers} <= {500, 202}
    assert any(a.status_code == 500 and a.json()["state"] == "cancelled" for a in answers)


def test_the_client_lets_the_server_wait_then_polls(api):
    from mlsys.client import MlsysClient

    client = MlsysClient(api.url)
    done = client.run_predict(wait=30, **_predict("fast", "client"))
    assert done["state"] == "succeeded" and done["result"]["rows_written"] == ROWS
    assert api.rows(INPUT.with_table("client")) == ROWS

    pending = client.submit_predict(wait=1, **_predict("slow", "client_slow"))
    assert "state" not in pending  # still running after 1 s: the 202 body, to poll
    client.cancel(pending["job_id"])
    assert client.wait(pending["job_id"], interval=0.2)["state"] == "cancelled"
