"""Evaluate jobs through the real service: POST /evaluations over HTTP, a real Celery worker
joins a predict job's output with its labels, GET .../evaluations serves the history, and each
caller sees only evaluations of tables it may read."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
import requests
from jsonschema import Draft202012Validator

from mlsys import datasets
from mlsys.client import ApiError, MlsysClient
from mlsys.ids import TableId
from mlsys.jobs import JobStore, keys
from mlsys.jobs.schedules import ScheduleStore
from mlsys.models.artifacts import save_model
from mlsys.monitoring.stats import stats_table
from mlsys.registry import sync_registry
from tests.integration.jobs_support import INPUT, OUTPUT, make_stack
from tests.models import ScriptedClassifier
from tests.services import celery_worker, serve_wsgi, wait_for
from web import create_app
from worker.app import QUEUE
from worker.beat import RUN_SCHEDULE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ADMIN, READER, OUTSIDER = "admin-token-0123456789", "reader-token-0123456789", "out-token-012345"
LABELS = TableId(INPUT.project, "titanic", "outcomes")
DOUBLED = LABELS.with_table("outcomes_doubled")  # three passengers' outcomes twice
ELSEWHERE = LABELS.with_table("outcomes_elsewhere")  # other passengers' outcomes


def _principal(name, token, scopes, datasets_=()):
    return {
        "name": name,
        "token_sha256": [hashlib.sha256(token.encode()).hexdigest()],
        "scopes": scopes,
        "input_datasets": list(datasets_),
        "output_datasets": list(datasets_),
    }


@pytest.fixture
def stack(tmp_path, redis_client, redis_url):
    principals = [
        _principal("admin", ADMIN, ["admin"]),
        _principal("reader", READER, ["predict"], ["mlsys-local.titanic"]),
        _principal("outsider", OUTSIDER, ["predict"], ["mlsys-local.elsewhere"]),
    ]
    stack = make_stack(tmp_path, redis_url, MLSYS_API_PRINCIPALS=json.dumps(principals))
    save_model(
        ScriptedClassifier().fit(None),
        stack.store,
        stack.settings.bucket_for("dev"),
        "scripted",
        1,
        target="Survived",
        id_columns=[datasets.ID_COLUMN],
        metrics={"test_accuracy": 0.99},  # a promise the scripted model cannot keep
    )
    sync_registry(stack.warehouse, stack.store, stack.settings, "dev")
    passengers = datasets.titanic(3_000, seed=4)
    stack.warehouse.write(passengers, INPUT, "WRITE_TRUNCATE")
    outcomes = passengers[[datasets.ID_COLUMN, "Survived"]]
    stack.warehouse.write(outcomes, LABELS, "WRITE_TRUNCATE")
    stack.warehouse.write(pd.concat([outcomes, outcomes[:3]]), DOUBLED, "WRITE_TRUNCATE")
    moved = outcomes.assign(PassengerId=outcomes["PassengerId"] + 10_000_000)
    stack.warehouse.write(moved, ELSEWHERE, "WRITE_TRUNCATE")
    return stack


def _post(url, token, **body):
    body = {
        "env": "dev",
        "output_table": str(OUTPUT),
        "labels_table": str(LABELS),
        "days": 2,
        **body,
    }
    return requests.post(
        f"{url}/evaluations",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _history(url, token):
    return requests.get(
        f"{url}/models/scripted/versions/v1/evaluations",
        params={"env": "dev", "details": "true"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_an_evaluation_runs_on_a_worker_and_its_history_is_served(stack):
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    with celery_worker(stack.env, stack.cwd, concurrency=1), serve_wsgi(app) as url:
        predicted = stack.wait(stack.submit("scripted"))
        assert predicted.state == "succeeded", predicted.error

        answer = _post(url, READER, idempotency_key="daily-check")
        assert answer.status_code == 202, answer.text
        job = stack.wait(answer.json()["job_id"])
        retried = _post(url, READER, idempotency_key="daily-check")
        refused = _post(url, OUTSIDER)
        not_mlsys = _post(url, READER, output_table=str(INPUT))
        # Scans the API does not make (it reads no table data): the job refuses these.
        doubled = stack.wait(_post(url, READER, labels_table=str(DOUBLED)).json()["job_id"])
        elsewhere = stack.wait(_post(url, READER, labels_table=str(ELSEWHERE)).json()["job_id"])
        mine, theirs, admins = _history(url, READER), _history(url, OUTSIDER), _history(url, ADMIN)
        client = MlsysClient(url, READER)
        from_client = client.evaluations("dev", "scripted", "v1")
        with pytest.raises(ApiError, match="400: Table mlsys-local.titanic.passengers was not"):
            client.evaluate(env="dev", output_table=str(INPUT), labels_table=str(LABELS))
        result = MlsysClient(url, ADMIN).evaluate(
            timeout=60, env="dev", output_table=str(OUTPUT), labels_table=str(LABELS), days=2
        )
        spec = requests.get(
            f"{url}/openapi.json", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
        ).json()
        # The job records expire (MLSYS_JOB_TTL); the rows the worker wrote name their owner.
        expired = [job.job_id, predicted.job_id]
        JobStore.from_settings(stack.settings).client.delete(*map(keys.job, expired))
        after_expiry = _history(url, READER)

    assert job.state == "succeeded", job.error
    assert retried.status_code == 200 and retried.json()["job_id"] == job.job_id, retried.text
    assert job.kind == "evaluate" and job.progress.percent == 100.0
    (version,) = job.result["versions"]
    window = version["window"]
    assert window["rows"] == window["matched"] == 3_000
    frame = stack.output_rows().merge(
        stack.warehouse.read_table(LABELS).to_pandas(), on="PassengerId", suffixes=("", "_true")
    )
    accuracy = (frame["Survived"] == frame["Survived_true"]).mean()
    assert window["metrics"]["accuracy"] == pytest.approx(accuracy)
    assert window["status"] == "degraded"  # against the saved test_accuracy of 0.99

    assert refused.status_code == 403, refused.text
    assert "may not read mlsys-local.titanic" in refused.json()["detail"]
    assert not_mlsys.status_code == 400, not_mlsys.text
    assert "was not written by mlsys" in not_mlsys.json()["detail"]
    assert doubled.state == "failed" and doubled.error.type == "InvalidRequest"
    assert "has 3 key value(s) that appear more than once" in doubled.error.message
    assert elsewhere.state == "failed" and "No key overlap" in elsewhere.error.message

    assert mine.status_code == 200, mine.text
    (day,) = mine.json()["evaluations"]
    assert day["job_id"] == job.job_id and day["status"] == "degraded"
    assert day["accuracy"] == pytest.approx(accuracy)
    assert day["details"]["confusion"]["classes"] == ["0", "1"]
    documented = spec["paths"]["/models/{name}/versions/{version}/evaluations"]["get"]
    schema = documented["responses"]["200"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({"components": spec["components"], **schema})
    assert [e.message for e in validator.iter_errors(mine.json())] == []
    assert [r["job_id"] for r in from_client] == [job.job_id]
    assert result["versions"][0]["window"]["matched"] == 3_000
    assert theirs.status_code == 200 and theirs.json()["evaluations"] == []
    assert [d["job_id"] for d in admins.json()["evaluations"]] == [job.job_id]
    assert [d["job_id"] for d in after_expiry.json()["evaluations"]] == [job.job_id]
    assert all("principal" not in d for d in after_expiry.json()["evaluations"])
    stats = stack.warehouse.read_table(stats_table(stack.settings, "dev")).to_pylist()
    assert {(r["job_id"], r["principal"]) for r in stats} == {(predicted.job_id, "local")}


def test_a_cancelled_evaluation_stores_nothing(stack):
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    with celery_worker(stack.env, stack.cwd, concurrency=1):
        assert stack.wait(stack.submit("scripted")).state == "succeeded"
    with serve_wsgi(app) as url:
        answer = _post(url, ADMIN)
        job_id = answer.json()["job_id"]
        cancel = requests.delete(
            f"{url}/jobs/{job_id}", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
        )
    assert cancel.status_code in (200, 202), cancel.text
    with celery_worker(stack.env, stack.cwd, concurrency=1):
        job = stack.wait(job_id)
    assert job.state == "cancelled"
    assert not stack.warehouse.exists(
        TableId(stack.settings.gcp_project_id, stack.settings.dataset_for("dev"), "evaluations")
    )


def test_a_schedule_of_evaluations_submits_evaluate_jobs(stack):
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    with celery_worker(stack.env, stack.cwd, concurrency=1), serve_wsgi(app) as url:
        assert stack.wait(stack.submit("scripted")).state == "succeeded"
        headers = {"Authorization": f"Bearer {READER}"}
        evaluate = {"env": "dev", "output_table": str(OUTPUT), "labels_table": str(LABELS)}
        predict = {
            "env": "dev",
            "input_table": str(INPUT),
            "output_table": str(OUTPUT),
            "model_name": "scripted",
        }
        both = requests.post(
            f"{url}/schedules",
            json={"cron": "0 6 * * *", "predict": predict, "evaluate": evaluate},
            headers=headers,
            timeout=30,
        )
        created = requests.post(
            f"{url}/schedules",
            json={"cron": "0 6 * * *", "evaluate": {**evaluate, "days": 2}, "paused": True},
            headers=headers,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        schedule = created.json()
        store = ScheduleStore(stack.jobs.client)
        store.update(store.get(schedule["schedule_id"]), paused=False)
        stack.celery.send_task(RUN_SCHEDULE, args=[schedule["schedule_id"]], queue=QUEUE)
        wait_for(
            lambda: store.last_job(schedule["schedule_id"]) is not None, what="a scheduled run"
        )
        job = stack.wait(store.last_job(schedule["schedule_id"]))
        listed = requests.get(f"{url}/schedules", headers=headers, timeout=30)

    assert both.status_code == 400, both.text
    assert "exactly one of predict and evaluate" in both.json()["detail"]
    assert schedule["predict"] is None and schedule["evaluate"]["days"] == 2
    assert job.kind == "evaluate" and job.state == "succeeded", job.error
    assert job.params["schedule_id"] == schedule["schedule_id"]
    assert job.params["since"] and job.params["until"]  # the window was fixed at the firing
    assert job.result["versions"][0]["window"]["matched"] == 3_000
    assert [s["evaluate"]["labels_table"] for s in listed.json()["schedules"]] == [str(LABELS)]
