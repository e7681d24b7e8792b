"""The newest dashboard and evaluation doors against a second principal and odd records: an
evaluation schedule on the version and schedule pages, whose evaluations a caller sees."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import requests

from mlsys.demo import run_demo
from mlsys.evaluation.pipeline import run_evaluation
from mlsys.evaluation.spec import EvaluateSpec
from mlsys.jobs import JobKind, JobStore, NewJob
from mlsys.registry import registry_table
from mlsys.settings import Settings
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse
from tests.integration.test_evaluation_pages import _evaluate_with_flipped_outcomes
from tests.integration.test_ui_pages import TOKEN, _csrf
from tests.services import serve_wsgi
from web import create_app
from web.credentials import token_hash
from worker.app import create_celery

pytestmark = pytest.mark.integration

ANALYST = "analyst-token-0123456789abcdef"  # pragma: allowlist secret
PREDICTIONS = "mlsys-local.titanic.predictions"
OUTCOMES = "mlsys-local.titanic.outcomes"
VERSION_PAGE = "/ui/models/titanic-survival/versions/v1?env=dev"
HISTORY = "/models/titanic-survival/versions/v1/evaluations?env=dev"


#: What the schedule tests schedule (the demo's tables and model).
SCHEDULED_PREDICT = {
    "env": "dev",
    "input_table": "mlsys-local.titanic.passengers",
    "output_table": "mlsys-local.titanic.scheduled",
    "model_name": "titanic-survival",
}


@pytest.fixture
def two_principals(tmp_path, redis_client, redis_url):
    """The app with an admin token and an `analyst` (predict scope, every dataset)."""
    principals = [{"name": "analyst", "token_sha256": [token_hash(ANALYST)], "scopes": ["predict"]}]
    config = Settings(
        _env_file=None,
        MLSYS_HOME=str(tmp_path / "home"),
        REDIS_URL=redis_url,
        MLSYS_API_TOKENS=TOKEN,
        MLSYS_API_PRINCIPALS=json.dumps(principals),
    )
    run_demo(
        open_warehouse(settings=config), open_store(settings=config), config, rows=300,
        say=lambda *_: None,
    )  # fmt: skip
    _evaluate_with_flipped_outcomes(tmp_path / "home")  # job "ui-evaluation": no one's job
    celery = create_celery(config)
    app = create_app({"SETTINGS": config, "CELERY_APP": celery})
    with serve_wsgi(app) as url:
        yield url, config, JobStore.from_url(redis_url)
    celery.close()


def _browser(url: str, token: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{url}/ui/signin")
    signed = browser.post(
        f"{url}/ui/signin", data={"token": token, "csrf_token": _csrf(form)}, allow_redirects=False
    )
    assert signed.status_code == 303, signed.text
    return browser


def _api(token: str) -> requests.Session:
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    return api


def test_an_evaluation_schedule_shows_on_the_version_and_edit_pages(two_principals):
    url, _, _ = two_principals
    created = _api(ANALYST).post(
        f"{url}/schedules",
        json={
            "name": "nightly-eval",
            "cron": "0 7 * * *",
            "evaluate": {"env": "dev", "output_table": PREDICTIONS, "labels_table": OUTCOMES},
        },
    )
    assert created.status_code == 201, created.text
    browser = _browser(url, ANALYST)

    version = browser.get(url + VERSION_PAGE)
    edit = browser.get(f"{url}/ui/schedules/{created.json()['schedule_id']}/edit")
    listed = browser.get(f"{url}/ui/schedules")

    assert version.status_code == 200, version.text[-2000:]
    assert edit.status_code == 200, edit.text[-2000:]
    assert "nightly-eval" in edit.text and OUTCOMES in edit.text
    assert listed.status_code == 200 and "nightly-eval" in listed.text
    schedule_id = created.json()["schedule_id"]
    saved = browser.post(
        f"{url}/ui/schedules/{schedule_id}/edit",
        data={"csrf_token": _csrf(edit), "name": "nightly-eval", "cron": "0 8 * * *"},
    )
    assert saved.status_code == 200, saved.text[-2000:]
    assert _api(ANALYST).get(f"{url}/schedules/{schedule_id}").json()["cron"] == "0 8 * * *"


def test_a_caller_sees_only_evaluations_of_its_own_jobs(two_principals):
    url, config, jobs = two_principals
    job, _ = jobs.create(NewJob(JobKind.EVALUATE, {"env": "dev"}, "analyst", rows_total=1))
    spec = EvaluateSpec.parse(
        env="dev", output_table=PREDICTIONS, labels_table=OUTCOMES, days=1, settings=config
    )
    warehouse = open_warehouse(settings=config)
    run_evaluation(spec, warehouse, config, job.job_id)
    warehouse.close()

    mine = _api(ANALYST).get(url + HISTORY)
    everyone = _api(TOKEN).get(url + HISTORY)
    page = _browser(url, ANALYST).get(url + HISTORY.replace("/models", "/ui/models"))

    assert mine.status_code == 200, mine.text
    assert {row["job_id"] for row in mine.json()["evaluations"]} == {job.job_id}
    assert {row["job_id"] for row in everyone.json()["evaluations"]} == {
        job.job_id,
        "ui-evaluation",
    }
    assert page.status_code == 200 and job.job_id[:8] in page.text
    assert "ui-evalu" not in page.text


@pytest.mark.parametrize(
    "query",
    [
        {"interval_seconds": "nan"},
        {"interval_seconds": "inf"},
        {"interval_seconds": "1e308"},
        {"cron": "0 0 31 2 *"},  # 31 February: five valid fields, never a day
        {"cron": "0 0 30 2 *", "timezone": "Europe/Paris"},
    ],
)
def test_the_schedule_preview_says_why_a_timing_never_runs(two_principals, query):
    url, _, _ = two_principals
    browser = _browser(url, ANALYST)

    answer = browser.get(f"{url}/ui/schedules/preview/live", params=query)

    assert answer.status_code == 200, answer.text
    assert answer.json()["error"] and "runs" not in answer.json()


def test_a_schedule_on_a_day_that_never_comes_is_refused_with_400(two_principals):
    url, _, _ = two_principals
    predict = dict(SCHEDULED_PREDICT)

    created = _api(ANALYST).post(
        f"{url}/schedules", json={"cron": "0 6 31 2 *", "predict": predict}
    )
    form = _browser(url, ANALYST)
    page = form.get(f"{url}/ui/schedules/new")
    posted = form.post(
        f"{url}/ui/schedules/new",
        data={"csrf_token": _csrf(page), **predict, "cron": "0 6 30 2 *", "timezone": "UTC"},
    )

    assert created.status_code == 400, created.text
    assert created.headers["Content-Type"] == "application/problem+json"
    assert "never" in created.json()["detail"]
    assert posted.status_code == 400 and "never" in posted.text
    assert _api(ANALYST).get(f"{url}/schedules").json()["schedules"] == []


def test_a_schedule_on_sunday_as_7_is_created_and_runs_on_sundays(two_principals):
    url, _, _ = two_principals
    predict = dict(SCHEDULED_PREDICT)

    created = _api(ANALYST).post(f"{url}/schedules", json={"cron": "5 4 * * 7", "predict": predict})

    assert created.status_code == 201, created.text
    next_run = datetime.fromisoformat(created.json()["next_run_at"])
    assert next_run.weekday() == 6 and (next_run.hour, next_run.minute) == (4, 5)


@pytest.mark.parametrize(
    "extra",
    [
        {"until": "0001-01-01"},
        {"since": "0001-01-01T00:00:00Z"},
        {"label_delay": "99999999999999d"},
        {"label_delay": 10**15},
        {"since": "2999-01-01"},  # nothing to read yet: refused now, not by a failing job
        {"days": True},  # JSON's true is not 1
        {"label_delay": True},
        {"threshold": True},
    ],
)
def test_an_evaluation_window_off_the_calendar_is_a_400(two_principals, extra):
    url, _, jobs = two_principals
    body = {"env": "dev", "output_table": PREDICTIONS, "labels_table": OUTCOMES, **extra}

    answer = _api(ANALYST).post(f"{url}/evaluations", json=body)

    assert answer.status_code == 400, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert next(iter(extra)) in answer.json()["detail"]
    assert jobs.page("analyst").jobs == []


def test_odd_metadata_of_a_saved_model_is_shown_escaped_not_a_500(two_principals):
    url, config, _ = two_principals
    odd = {
        "library_versions": "sklearn 1.5",  # a string, not {library: version}
        "created_at": 1718000000,  # a number, not an ISO time
        "profile": {"features": ["Age"], "rows": "many"},
        "description": "<script>alert(1)</script>",
        "notebook": "javascript:alert(2)",
    }
    warehouse = open_warehouse(settings=config)
    table = registry_table(config, "dev")
    rows = warehouse.read_table(table).to_pandas()
    rows["metadata"] = [json.dumps({**json.loads(m or "{}"), **odd}) for m in rows["metadata"]]
    warehouse.write(rows, table, "WRITE_TRUNCATE")
    warehouse.close()
    browser = _browser(url, ANALYST)

    version = browser.get(url + VERSION_PAGE)
    compare = browser.get(f"{url}/ui/models/titanic-survival/compare?a=v1&b=v1&env=dev")

    assert version.status_code == 200, version.text[-2000:]
    assert compare.status_code == 200, compare.text[-2000:]
    for page in (version.text, compare.text):
        assert "<script>alert" not in page and 'href="javascript' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in version.text


def test_a_job_record_without_tables_does_not_take_the_jobs_list_down(two_principals):
    url, _, jobs = two_principals
    # A record as an older release (or a hand edit in Redis) left it: no input table.
    odd, _ = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev", "input_table": None}, "analyst"))
    browser = _browser(url, ANALYST)

    page = browser.get(f"{url}/ui/jobs")
    live = browser.get(f"{url}/ui/jobs/live")

    assert page.status_code == 200, page.text[-2000:]
    assert live.status_code == 200 and odd.job_id in live.text
