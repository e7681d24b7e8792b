"""The API over HTTP: the real app on a real port, a real Redis broker, real DuckDB tables.

No worker runs here, so these tests check what the API itself does: what it validates, what
it records, and which Celery messages it leaves in the broker's `mlsys` queue.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import requests

import web.metrics
from mlsys import datasets
from mlsys.artifacts import save_model
from mlsys.demo import run_demo
from mlsys.ids import TableId
from mlsys.jobs import JobStore
from mlsys.registry import sync_registry
from mlsys.settings import Settings
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse
from tests.integration.trust_support import Api
from tests.models import FEATURES, ScriptedClassifier
from tests.services import celery_worker, free_port, repo_root, serve_wsgi, wait_for
from web import create_app
from web.openapi import NOT_API_PREFIX, openapi_path
from web.policy import policy_of
from worker.app import PLAN_TASK, SYNC_TASK, create_celery

pytestmark = pytest.mark.integration

PROJECT = "mlsys-local"
PASSENGERS = f"{PROJECT}.titanic.passengers"
TOKENS = ("alpha-token-0123456789", "beta-token-9876543210")


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    """An MLSYS_HOME with the demo's tables and `titanic-survival/v1` registered in dev, plus
    a passengers table without `Fare`; built once, copied into each test's home."""
    home = tmp_path_factory.mktemp("demo") / "home"
    settings = Settings(_env_file=None, MLSYS_HOME=str(home))
    warehouse = open_warehouse(settings=settings)
    run_demo(warehouse, open_store(settings=settings), settings, rows=2000, say=lambda *_: None)
    no_fare = datasets.titanic(200).drop(columns=["Fare"])
    warehouse.write(no_fare, TableId(PROJECT, "titanic", "no_fare"), "WRITE_TRUNCATE")
    return home


def _settings(home: Path, redis_url: str, tokens: tuple[str, ...] = TOKENS) -> Settings:
    return Settings(
        _env_file=None,
        MLSYS_HOME=str(home),
        REDIS_URL=redis_url,
        MLSYS_API_TOKENS=",".join(tokens),
        # No worker runs here: the seed's GET aliases answer 202 at once instead of waiting.
        MLSYS_SYNC_WAIT_SECONDS="0",
    )


class Dispatcher:
    """One server per module; each test mounts its own app (a server shutdown costs 0.5 s)."""

    def __init__(self) -> None:
        self.app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Dispatcher]]:
    dispatcher = Dispatcher()
    with serve_wsgi(dispatcher) as url:
        yield url, dispatcher


def build_app(settings: Settings, **config):
    """The app for `settings`, with a Celery app on the same Redis."""
    celery = config.pop("CELERY_APP", None) or create_celery(settings)
    return create_app({"SETTINGS": settings, "CELERY_APP": celery, **config}), celery


@contextlib.contextmanager
def serve(settings: Settings, **config) -> Iterator[str]:
    """Serve an app built from `settings` (and test overrides) on a server of its own."""
    app, celery = build_app(settings, **config)
    try:
        with serve_wsgi(app) as url:
            yield url
    finally:
        celery.close()


@pytest.fixture
def api(settings, redis_url, redis_client, demo_home, server) -> Iterator[Api]:
    """The app on this test's copy of the demo home, with two tokens configured."""
    shutil.copytree(demo_home, settings.home, dirs_exist_ok=True)
    configured = _settings(settings.home, redis_url)
    url, dispatcher = server
    dispatcher.app, celery = build_app(configured)
    try:
        yield Api(url, configured, redis_client, {"Authorization": f"Bearer {TOKENS[0]}"})
    finally:
        dispatcher.app = None
        celery.close()


def predict_body(**overrides) -> dict:
    body = {
        "env": "dev",
        "input_table": PASSENGERS,
        "output_table": f"{PROJECT}.titanic.scored",
        "model_name": "titanic-survival",
        "model_version": "latest",
    }
    return {**body, **overrides}


def message_args(message: dict) -> list:
    """The positional args of a Celery (protocol 2) message."""
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return args


def pinned_version(api: Api, job_id: str) -> int:
    """The model version a job's record pinned at submit, for the worker."""
    return JobStore.from_settings(api.settings).record(job_id).prepared["model"]["model_version"]


def assert_problem(response: requests.Response, status: int, *phrases: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert set(problem) >= {"type", "title", "status", "detail"}
    assert problem["status"] == status
    for phrase in phrases:
        assert phrase.lower() in problem["detail"].lower(), problem["detail"]
    return problem


# --- submitting predictions ---------------------------------------------------------------------
def test_post_predict_queues_a_job_and_its_plan_message(api):
    response = api.call("POST", "/predict", json=predict_body(id_columns=["PassengerId"]))

    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert response.json()["status_url"] == f"/jobs/{job_id}"
    assert response.headers["Location"] == f"/jobs/{job_id}"
    job = api.call("GET", f"/jobs/{job_id}").json()
    assert job["kind"] == "predict" and job["state"] == "queued"
    assert job["params"] == {
        **predict_body(),
        "id_columns": ["PassengerId"],
        "write_disposition": "WRITE_APPEND",
        "shards": None,
    }
    assert job["progress"] == {"rows_done": 0, "rows_total": 2000, "percent": 0.0}
    # The version resolved at submit is pinned for the worker.
    assert pinned_version(api, job_id) == 1
    (message,) = api.queued()
    assert message["headers"]["task"] == PLAN_TASK
    assert message_args(message) == [job_id, 1]


def test_get_predict_alias_queues_the_same_job(api):
    response = api.call("GET", "/predict", params=predict_body(model_version="v1"))

    assert response.status_code == 202, response.text
    job = api.call("GET", response.headers["Location"]).json()
    assert job["params"]["model_version"] == "v1"
    assert job["params"]["input_table"] == PASSENGERS
    assert [m["headers"]["task"] for m in api.queued()] == [PLAN_TASK]


def test_idempotency_key_returns_the_first_job_and_enqueues_once(api):
    first = api.call("POST", "/predict", json=predict_body(idempotency_key="run-2024.06:01"))
    again = api.call("POST", "/predict", json=predict_body(idempotency_key="run-2024.06:01"))
    header = api.call(
        "POST", "/predict", json=predict_body(), headers={"Idempotency-Key": "run-2024.06:01"}
    )

    assert first.status_code == 202
    assert again.status_code == 200 and header.status_code == 200
    assert first.json() == again.json() == header.json()
    assert len(api.queued()) == 1 and len(api.job_records()) == 1


def test_concurrent_submits_with_one_idempotency_key_make_one_job(api):
    gate = threading.Barrier(8)

    def submit(_) -> requests.Response:
        gate.wait(timeout=30)  # all eight requests in flight together
        return api.call("POST", "/predict", json=predict_body(idempotency_key="nightly-1"))

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(submit, range(8)))

    assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
    assert len({r.json()["job_id"] for r in responses}) == 1
    assert len(api.queued()) == 1 and len(api.job_records()) == 1


@pytest.mark.parametrize(
    ("body_key", "header_key", "status", "same_job"),
    [
        pytest.param("k-1", "k-1", 200, True, id="same-in-both"),
        pytest.param(None, "k-1", 200, True, id="header-only"),
        pytest.param("k-2", None, 202, False, id="another-body-key"),
    ],
)
def test_the_header_and_body_keys_are_one_key(api, body_key, header_key, status, same_job):
    first = api.call("POST", "/predict", json=predict_body(idempotency_key="k-1"))
    body = predict_body(**({"idempotency_key": body_key} if body_key else {}))
    headers = {"Idempotency-Key": header_key} if header_key else {}

    again = api.call("POST", "/predict", json=body, headers=headers)

    assert first.status_code == 202 and again.status_code == status, again.text
    assert (again.json()["job_id"] == first.json()["job_id"]) is same_job
    assert len(api.queued()) == len(api.job_records()) == (1 if same_job else 2)


def test_a_header_key_that_disagrees_with_the_body_key_is_400(api):
    response = api.call(
        "POST",
        "/predict",
        json=predict_body(idempotency_key="k-body"),
        headers={"Idempotency-Key": "k-header"},
    )

    assert_problem(response, 400, "Idempotency-Key header and idempotency_key differ")
    assert api.queued() == [] and api.job_records() == []


def test_idempotency_key_reused_for_another_request_is_a_conflict(api):
    api.call("POST", "/predict", json=predict_body(idempotency_key="k1"))
    response = api.call("POST", "/predict", json=predict_body(idempotency_key="k1", shards=2))

    assert_problem(response, 409, "already used for a different request")
    assert len(api.queued()) == 1


HOSTILE_TABLES = [
    'mlsys-local.titanic.passengers"; DROP TABLE x; --',
    "mlsys-local.titanic.passengers'",
    "mlsys-local.`titanic`.passengers",
    "mlsys-local.titanic.passengers;",
    "mlsys-local.titanic.passengers --",
    "mlsys-local..passengers",
    "mlsys-local.titanic.passengers.extra",
    "../../etc.passwd.x",
    "mlsys-local.titanic.pass\u0435ngers",  # Cyrillic e
    "mlsys-local.titanic.passengers\u037e",  # Greek question mark (looks like ;)
    "mlsys-local.titanic." + "p" * 1100,
    "mlsys-local." + "d" * 1500 + ".t",
]
HOSTILE_MODELS = [
    "titanic/survival",
    "../titanic-survival",
    "titanic-survival/..",
    "file:///etc/passwd",
    "gs://bucket/model",
    "Titanic-Survival",
    "titanic-surviv\u0430l",
    "titanic-survival; rm -rf /",
    "m" * 65,
]

BAD_PREDICTS = [
    pytest.param(
        {"input_table": "titanic.passengers"}, 400, ["project.dataset.table"], id="short-id"
    ),
    pytest.param(
        {"input_table": f"{PROJECT}.titanic.nope"}, 404, ["does not exist"], id="no-table"
    ),
    pytest.param({"env": "qa"}, 400, ["unknown environment", "dev, staging, prod"], id="env"),
    pytest.param(
        {"model_name": "no-such-model"}, 404, ["not registered", "titanic-survival"], id="model"
    ),
    pytest.param({"model_version": "v9"}, 404, ["no version v9", "v1"], id="version"),
    pytest.param({"model_version": "nosuchalias"}, 404, ["no version nosuchalias"], id="alias"),
    pytest.param({"model_version": "v1; drop"}, 400, ["invalid model version"], id="bad-version"),
    pytest.param(
        {"input_table": f"{PROJECT}.titanic.no_fare"}, 422, ["lacks column", "Fare"], id="no-fare"
    ),
    pytest.param({"color": "blue"}, 400, ["color", "unknown field"], id="unknown-field"),
    pytest.param({"shards": 0}, 400, ["shards", "greater than or equal to 1"], id="shards-0"),
    pytest.param({"shards": 65}, 400, ["shards", "between 1 and 64"], id="shards-max"),
    pytest.param({"shards": "many"}, 400, ["shards", "integer"], id="shards-type"),
    pytest.param({"env": 5}, 400, ["env", "string"], id="env-type"),
    pytest.param({"id_columns": [f"c{i}" for i in range(17)]}, 400, ["id_columns"], id="ids-17"),
    pytest.param({"id_columns": ["PassengerId; --"]}, 400, ["invalid column"], id="id-hostile"),
    pytest.param({"id_columns": ["NoSuchColumn"]}, 422, ["NoSuchColumn"], id="id-missing"),
    pytest.param({"write_disposition": "WRITE_SOMETIMES"}, 400, ["write_disposition"], id="wd"),
    pytest.param({"idempotency_key": "has space"}, 400, ["idempotency_key"], id="key-chars"),
    pytest.param({"idempotency_key": "k" * 129}, 400, ["idempotency_key"], id="key-long"),
    pytest.param({"output_table": "x.y"}, 400, ["project.dataset.table"], id="bad-output"),
    pytest.param({"input_table": f"`{PASSENGERS}`"}, 400, ["without backticks"], id="backticks"),
    pytest.param({"input_table": "a" * 3000}, 400, ["input_table", "2048"], id="too-long"),
    *[
        pytest.param({"input_table": t}, 400, ["table id"], id=f"hostile-table-{i}")
        for i, t in enumerate(HOSTILE_TABLES)
    ],
    *[
        pytest.param({"output_table": t}, 400, ["table id"], id=f"hostile-output-{i}")
        for i, t in enumerate(HOSTILE_TABLES[:4])
    ],
    *[
        pytest.param({"model_name": m}, 400, ["model name"], id=f"hostile-model-{i}")
        for i, m in enumerate(HOSTILE_MODELS)
    ],
]


@pytest.mark.parametrize(("change", "status", "phrases"), BAD_PREDICTS)
def test_bad_predict_is_a_helpful_problem_and_enqueues_nothing(api, change, status, phrases):
    body = predict_body(**change)

    response = api.call("POST", "/predict", json=body)

    assert_problem(response, status, *phrases)
    assert api.queued() == [] and api.job_records() == []


def test_bad_get_predict_is_a_problem_too(api):
    response = api.call("GET", "/predict", params=predict_body(input_table="a.b"))
    missing = api.call("GET", "/predict", params={"env": "dev"})

    assert_problem(response, 400, "project.dataset.table")
    assert_problem(missing, 400, "input_table: required")
    assert api.queued() == []


@pytest.mark.parametrize(
    ("data", "content_type", "phrase"),
    [
        pytest.param("{not json", "application/json", "not valid JSON", id="malformed"),
        pytest.param(json.dumps(predict_body()), "text/plain", "Content-Type", id="text-plain"),
        pytest.param(json.dumps([predict_body()]), "application/json", "not an object", id="list"),
        pytest.param("", "application/json", "not valid JSON", id="empty"),
        pytest.param(b"\xff\xfe", "application/json", "not valid JSON", id="binary"),
        pytest.param("[" * 20000, "application/json", "not valid JSON", id="deep"),
    ],
)
def test_body_that_is_not_a_json_object_says_send_json(api, data, content_type, phrase):
    response = api.call("POST", "/predict", data=data, headers={"Content-Type": content_type})

    problem = assert_problem(response, 400, phrase)
    assert "json" in problem["detail"].lower()
    assert api.queued() == []


def test_body_over_64_kib_is_413(api):
    body = predict_body(id_columns=["x" * 70_000])

    assert_problem(api.call("POST", "/predict", json=body), 413, "64 KiB")


def test_invalid_idempotency_header_is_400(api):
    response = api.call(
        "POST", "/predict", json=predict_body(), headers={"Idempotency-Key": "no spaces"}
    )

    assert_problem(response, 400, "Idempotency-Key")
    assert api.queued() == []


# --- jobs ---------------------------------------------------------------------------------------
def test_unknown_job_is_404(api):
    assert_problem(api.call("GET", "/jobs/0123456789abcdef"), 404, "no job")
    assert_problem(api.call("DELETE", "/jobs/0123456789abcdef"), 404, "no job")


def test_cancel_a_queued_job_then_again_is_409(api):
    job_id = api.call("POST", "/predict", json=predict_body()).json()["job_id"]

    cancelled = api.call("DELETE", f"/jobs/{job_id}")
    again = api.call("DELETE", f"/jobs/{job_id}")

    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert api.call("GET", f"/jobs/{job_id}").json()["state"] == "cancelled"
    assert_problem(again, 409, "already cancelled")


def test_list_jobs_filters_and_validates(api):
    predict_id = api.call("POST", "/predict", json=predict_body()).json()["job_id"]
    sync_id = api.call("POST", "/model-registry", json={"env": "dev"}).json()["job_id"]

    everything = api.call("GET", "/jobs").json()["jobs"]
    predicts = api.call("GET", "/jobs", params={"kind": "predict"}).json()["jobs"]
    one = api.call("GET", "/jobs", params={"limit": 1}).json()["jobs"]

    assert [j["job_id"] for j in everything] == [sync_id, predict_id]
    assert [j["job_id"] for j in predicts] == [predict_id]
    assert [j["job_id"] for j in one] == [sync_id]
    assert api.call("GET", "/jobs", params={"state": "failed"}).json() == {
        "jobs": [],
        "next_page_token": None,
    }
    for bad in ({"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"state": "done"}, {"x": 1}):
        assert_problem(api.call("GET", "/jobs", params=bad), 400, next(iter(bad)))


# --- registry -----------------------------------------------------------------------------------
def test_registry_sync_post_and_get_alias_queue_sync_jobs(api):
    posted = api.call("POST", "/model-registry", json={"env": "dev"})
    got = api.call("GET", "/model-registry", params={"env": "dev"})

    assert posted.status_code == got.status_code == 202
    messages = api.queued()
    assert [m["headers"]["task"] for m in messages] == [SYNC_TASK, SYNC_TASK]
    assert [message_args(m)[0] for m in messages] == [posted.json()["job_id"], got.json()["job_id"]]
    job = api.call("GET", posted.headers["Location"]).json()
    assert job["kind"] == "registry_sync" and job["params"] == {"env": "dev"}


def test_registry_sync_of_unknown_env_is_400_and_enqueues_nothing(api):
    assert_problem(api.call("POST", "/model-registry", json={"env": "qa"}), 400, "environment")
    assert_problem(api.call("GET", "/model-registry", params={"env": "../x"}), 400, "environment")
    assert_problem(api.call("POST", "/model-registry", json={}), 400, "env: required")
    assert api.queued() == [] and api.job_records() == []


def test_models_lists_the_demo_model_and_its_versions(api):
    listing = api.call("GET", "/models", params={"env": "dev"}).json()
    versions = api.call("GET", "/models/titanic-survival", params={"env": "dev"}).json()

    assert listing["env"] == "dev"
    assert [(m["model_name"], m["model_version"]) for m in listing["models"]] == [
        ("titanic-survival", "v1")
    ]
    assert listing["models"][0]["status"] == "active"
    assert versions["versions"] == listing["models"]
    assert api.call("GET", "/models", params={"env": "staging"}).json()["models"] == []
    assert_problem(api.call("GET", "/models/nope", params={"env": "dev"}), 404, "not registered")
    assert_problem(api.call("GET", "/models/Bad..Name", params={"env": "dev"}), 400, "model name")
    assert_problem(api.call("GET", "/models", params={"env": "qa"}), 400, "environment")
    assert_problem(api.call("GET", "/models"), 400, "env: required")


@contextlib.contextmanager
def alias_worker(api: Api) -> Iterator[None]:
    """A real Celery worker on the test's Redis and home: an alias move is a job it runs."""
    env = {
        **os.environ,
        "MLSYS_HOME": str(api.settings.home),
        "REDIS_URL": api.settings.redis_url,
    }
    # The API answers as soon as the move is done; the bound only covers the worker's start on
    # a busy machine.
    api.settings.alias_wait_seconds = 240
    with celery_worker(env, repo_root(), name="aliases"):
        yield


def test_alias_moves_are_jobs_a_worker_runs(api):
    # Without a worker nothing writes: the API queues the move and answers 202 with the job.
    api.settings.alias_wait_seconds = 0
    response = api.call(
        "PUT", "/models/titanic-survival/aliases/champion", json={"env": "dev", "version": "v1"}
    )
    assert response.status_code == 202, response.text
    job = api.call("GET", response.headers["Location"]).json()
    assert job["kind"] == "alias_move" and job["state"] == "queued"
    assert job["params"] == {
        "env": "dev", "model_name": "titanic-survival", "alias": "champion", "version": "v1"
    }  # fmt: skip
    listing = api.call("GET", "/models/titanic-survival", params={"env": "dev"}).json()
    assert listing["versions"][0]["aliases"] == []


def test_alias_set_over_http_is_usable_by_predict(api):
    with alias_worker(api):
        response = api.call(
            "PUT",
            "/models/titanic-survival/aliases/champion",
            json={"env": "dev", "version": "v1"},
        )

    assert response.status_code == 200, response.text
    assert response.json()["aliases"] == ["champion"]
    assert response.json()["model_version"] == "v1"
    submitted = api.call("POST", "/predict", json=predict_body(model_version="champion"))
    assert submitted.status_code == 202
    listing = api.call("GET", "/models/titanic-survival", params={"env": "dev"}).json()
    assert listing["versions"][0]["aliases"] == ["champion"]


def test_alias_moves_between_versions_over_http(api):
    # A second version of the demo model, saved and registered.
    warehouse, store = open_warehouse(settings=api.settings), open_store(settings=api.settings)
    model = ScriptedClassifier().fit(pd.DataFrame(columns=FEATURES))
    save_model(model, store, api.settings.bucket_for("dev"), "titanic-survival", 2,
               target="Survived", id_columns=["PassengerId"])  # fmt: skip
    sync_registry(warehouse, store, api.settings, "dev")
    alias = "/models/titanic-survival/aliases/champion"

    def aliases() -> dict[str, list[str]]:
        listing = api.call("GET", "/models/titanic-survival", params={"env": "dev"}).json()
        return {v["model_version"]: v["aliases"] for v in listing["versions"]}

    with alias_worker(api):
        to_v1 = api.call("PUT", alias, json={"env": "dev", "version": "v1"})
        before = api.call("POST", "/predict", json=predict_body(model_version="champion"))
        to_v2 = api.call("PUT", alias, json={"env": "dev", "version": "v2"})
        after = api.call("POST", "/predict", json=predict_body(model_version="champion"))

    assert (to_v1.status_code, to_v2.status_code) == (200, 200), to_v2.text
    assert to_v2.json()["model_version"] == "v2" and to_v2.json()["aliases"] == ["champion"]
    assert aliases() == {"v1": [], "v2": ["champion"]}  # moved, not copied
    # A job pins what the alias meant when it was submitted.
    assert pinned_version(api, before.json()["job_id"]) == 1
    assert pinned_version(api, after.json()["job_id"]) == 2
    with alias_worker(api):
        back = api.call("PUT", alias, json={"env": "dev", "version": "v1"})
    assert back.status_code == 200 and aliases() == {"v1": ["champion"], "v2": []}


@pytest.mark.parametrize(
    ("path", "body", "status", "phrase"),
    [
        ("/models/titanic-survival/aliases/champion", {"env": "dev", "version": "v9"}, 404, "v9"),
        ("/models/titanic-survival/aliases/latest", {"env": "dev", "version": "v1"}, 400, "alias"),
        ("/models/titanic-survival/aliases/v2", {"env": "dev", "version": "v1"}, 400, "alias"),
        ("/models/nope/aliases/champion", {"env": "dev", "version": "v1"}, 404, "not registered"),
        ("/models/titanic-survival/aliases/champion", {"env": "qa", "version": "v1"}, 400, "env"),
        ("/models/titanic-survival/aliases/champion", {"env": "dev"}, 400, "version: required"),
    ],
)
def test_bad_alias_requests_are_problems(api, path, body, status, phrase):
    assert_problem(api.call("PUT", path, json=body), status, phrase)


# --- health, readiness, errors ------------------------------------------------------------------
def test_health_and_ready_when_everything_is_up(api):
    assert requests.get(api.url + "/health", timeout=5).json() == {"status": "ok"}
    ready = api.call("GET", "/ready")

    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert {name: check["ok"] for name, check in ready.json()["checks"].items()} == {
        "redis": True,
        "warehouse": True,
        "model_store": True,
    }


def test_ready_is_503_when_redis_is_down(settings, demo_home):
    # The demo's home: the model and tables exist, so only the missing Redis can refuse.
    shutil.copytree(demo_home, settings.home, dirs_exist_ok=True)
    dead = _settings(settings.home, f"redis://127.0.0.1:{free_port()}/0")
    with serve(dead) as url:
        response = requests.get(url + "/ready", headers={"Authorization": f"Bearer {TOKENS[1]}"})
        health = requests.get(url + "/health", timeout=5)
        submit = requests.post(
            url + "/predict", json=predict_body(), headers={"Authorization": f"Bearer {TOKENS[1]}"}
        )

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False and body["checks"]["redis"]["detail"]
    assert health.status_code == 200
    assert_problem(submit, 503, "retry")


def test_submit_when_the_broker_is_down_is_503_and_leaves_no_job(api, settings):
    broken = create_celery(_settings(settings.home, f"redis://127.0.0.1:{free_port()}/0"))
    with serve(api.settings, CELERY_APP=broken) as url:
        response = requests.post(url + "/predict", json=predict_body(), headers=api.headers)

    assert_problem(response, 503, "broker")
    assert api.job_records() == [] and JobStore.from_settings(api.settings).page().jobs == []


def test_head_never_submits_a_job(api):
    predict = api.call("HEAD", "/predict", params=predict_body())
    sync = api.call("HEAD", "/model-registry", params={"env": "dev"})

    assert predict.status_code == sync.status_code == 405
    assert api.queued() == [] and api.job_records() == []


def test_unknown_route_and_method_are_problems(api):
    assert_problem(api.call("GET", "/nope"), 404, "openapi.json")
    wrong = api.call("DELETE", "/models")
    assert_problem(wrong, 405, "DELETE")
    assert "GET" in wrong.headers["Allow"]


# --- auth ---------------------------------------------------------------------------------------
def _concrete(path: str) -> str:
    examples = {"job_id": "0123abcd", "name": "titanic-survival", "alias": "champion"}
    examples["filename"] = "viewer.js"
    examples["schedule_id"] = "0123456789abcdef0123456789abcdef"
    examples["version"] = "v1"
    return re.sub(r"{([^}]+)}", lambda m: examples[m.group(1)], path)


def _routes(api: Api) -> list[tuple[str, str, bool]]:
    """Every API route, and whether its policy is public (the /ui pages sign in by session
    cookie: test_ui_pages.py)."""
    app = create_app({"SETTINGS": api.settings})
    return sorted(
        (method, _concrete(openapi_path(rule.rule)), policy_of(app, rule.endpoint).public)
        for rule in app.url_map.iter_rules()
        if not rule.endpoint.startswith(NOT_API_PREFIX)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )


def test_every_route_but_health_requires_a_valid_bearer_token(api, caplog):
    caplog.set_level(logging.DEBUG)
    routes = _routes(api)
    assert ("GET", "/health", True) in routes and len(routes) >= 15
    assert {path for _, path, public in routes if public} == {"/health", "/docs/assets/viewer.js"}

    for method, path, public in routes:
        missing = api.call(method, path, headers={"Authorization": ""})
        wrong = api.call(method, path, headers={"Authorization": "Bearer wrong-token-x"})
        basic = api.call(method, path, headers={"Authorization": f"Basic {TOKENS[0]}"})
        if public:
            assert missing.status_code == wrong.status_code == 200, path
            continue
        for response in (missing, wrong, basic):
            assert_problem(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.queued() == [] and api.job_records() == []
    assert "wrong-token-x" not in caplog.text


@pytest.mark.parametrize("token", TOKENS)
def test_either_configured_token_is_accepted(api, token, caplog):
    caplog.set_level(logging.DEBUG)
    headers = {"Authorization": f"Bearer {token}"}

    for path in ("/jobs", "/ready", "/openapi.json", "/docs", "/metrics"):
        assert api.call("GET", path, headers=headers).status_code == 200, path
    assert api.call("GET", "/models", params={"env": "dev"}, headers=headers).status_code == 200
    submitted = api.call("POST", "/predict", json=predict_body(), headers=headers)
    assert submitted.status_code == 202
    # Tokens never reach logs or job records.
    stored = json.dumps({key: api.redis.hgetall(key) for key in api.job_records()})
    for secret in TOKENS:
        assert secret not in caplog.text and secret not in stored


def test_auth_off_is_logged_loudly(settings, redis_url, caplog):
    with caplog.at_level(logging.WARNING):
        create_app({"SETTINGS": _settings(settings.home, redis_url, tokens=())})

    assert "AUTHENTICATION IS OFF" in caplog.text


class _Clock:
    """A perf_counter that moves a quarter of a second each time it is read."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        self.now += 0.25
        return self.now


def test_each_request_is_logged_once_with_its_job_id_and_duration(api, caplog, monkeypatch):
    monkeypatch.setattr(web.metrics, "time", _Clock())  # read once at the start, once at the end
    caplog.set_level(logging.INFO, logger="web.access")
    job_id = api.call("POST", "/predict", json=predict_body()).json()["job_id"]

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "web.access"]
    (line,) = [entry for entry in lines if entry["path"] == "/predict"]
    assert line["method"] == "POST" and line["status"] == 202 and line["job_id"] == job_id
    assert line["duration_ms"] == 250.0
    text = api.call("GET", "/metrics").text
    assert 'mlsys_http_request_duration_seconds_sum{method="POST",route="/predict"} 0.25' in text


def test_metrics_count_requests_and_submitted_jobs(api):
    api.call("POST", "/predict", json=predict_body())
    api.call("GET", "/jobs/unknown")

    text = api.call("GET", "/metrics").text

    assert 'mlsys_jobs_submitted_total{kind="predict"} 1.0' in text
    assert 'route="/jobs/<job_id>",status="404"' in text
    assert "mlsys_http_request_duration_seconds_bucket" in text


# --- OpenAPI and docs ---------------------------------------------------------------------------
def test_openapi_lists_every_route_the_app_serves(api):
    spec = api.call("GET", "/openapi.json").json()
    app = create_app({"SETTINGS": api.settings})
    served = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if not rule.endpoint.startswith(NOT_API_PREFIX)  # the /ui pages are not the API
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }

    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert documented == served
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/health"]["get"]["security"] == []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"], (path, method)
            examples = [
                media.get("example")
                for response in op["responses"].values()
                for media in response.get("content", {}).values()
            ]
            assert any(e is not None for e in examples), (path, method)
            # Public routes (web.policy) carry no security and never answer 401.
            assert ("401" in op["responses"]) == (op.get("security") != []), (path, method)
    assert spec["paths"]["/docs/assets/{filename}"]["get"]["security"] == []
    assert "403" in spec["paths"]["/schedules"]["post"]["responses"]
    assert "429" in spec["paths"]["/schedules"]["post"]["responses"]
    post = spec["paths"]["/predict"]["post"]
    assert post["requestBody"]["content"]["application/json"]["example"]["env"] == "dev"
    schema = spec["components"]["schemas"]["PredictRequest"]
    assert schema["additionalProperties"] is False
    assert {"maximum": 64}.items() <= next(
        o for o in schema["properties"]["shards"]["anyOf"] if o.get("type") == "integer"
    ).items()


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def test_docs_page_serves_its_assets_itself(api):
    page = api.call("GET", "/docs")

    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    parser = _Assets()
    parser.feed(page.text)
    assert parser.urls and "//" not in page.text.replace("<!doctype html>", "")
    for url in parser.urls:
        assert url.startswith("/docs/assets/"), url
        asset = api.call("GET", url)
        assert asset.status_code == 200 and asset.content, url
    assert_problem(api.call("GET", "/docs/assets/..%2Fapp.py"), 404)
    assert_problem(api.call("GET", "/docs/assets/nope.js"), 404, "nope.js")


@pytest.mark.slow  # starts workers of its own (over 10 s)
def test_a_job_without_shards_gets_every_worker_slot(api):
    # 5,000 rows in batches of 100 (and snapshot row groups of 2,048): big enough to share, so
    # the plan gives each of the worker's two pool processes a shard; `shards` still wins.
    warehouse, store = open_warehouse(settings=api.settings), open_store(settings=api.settings)
    sync_registry(warehouse, store, api.settings, "dev")  # the copied home's files are new files
    many = TableId(PROJECT, "titanic", "many")
    warehouse.write(datasets.titanic(5000), many, "WRITE_TRUNCATE")
    env = {
        **os.environ,
        "MLSYS_HOME": str(api.settings.home),
        "REDIS_URL": api.settings.redis_url,
        "MLSYS_BATCH_ROWS": "100",
    }
    jobs = JobStore.from_url(api.settings.redis_url)
    with celery_worker(env, repo_root(), concurrency=2, name="slots"):
        wait_for(lambda: jobs.worker_slots() == 2, timeout=120, what="the worker's announcement")
        submitted = [
            api.call("POST", "/predict", json=predict_body(input_table=str(many), **options))
            for options in ({}, {"shards": 1})
        ]
        shared, pinned = (jobs.wait(r.json()["job_id"], timeout=240) for r in submitted)
    assert shared.state == "succeeded", shared
    assert len(shared.shards) == 2
    assert sum(s.rows_done for s in shared.shards) == 5000
    assert shared.result["rows_written"] == 5000
    assert pinned.state == "succeeded", pinned
    assert len(pinned.shards) == 1
