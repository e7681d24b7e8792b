"""The dashboard over HTTP: sign-in, session cookie, CSRF, cross-origin posts, every page.

The real app served over HTTP on the session's Redis, a demo warehouse in tmp; the browser-level
behaviour (live updates, a real worker) is in tests/e2e/test_dashboard.py.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pytest
import requests

from mlsys.demo import run_demo
from mlsys.jobs import JobKind, JobStore, NewJob
from mlsys.monitoring import PREDICTION, PROBABILITY, Profile, compare, reference_feature
from mlsys.prediction_stats import KEYS, stats_rows, stats_table
from mlsys.settings import Settings
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse
from tests.services import celery_worker, repo_root, serve_wsgi
from web import create_app
from web.auth import AUTH_OFF_WARNING
from web.credentials import token_hash
from worker.app import create_celery

pytestmark = pytest.mark.integration

TOKEN = "ui-token-0123456789abcdef"  # pragma: allowlist secret
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = (
    "/ui/",
    "/ui/jobs",
    "/ui/jobs?state=running",
    "/ui/jobs?state=failed&kind=predict&limit=500",
    "/ui/jobs/live",
    "/ui/jobs/live?limit=500",
    "/ui/models",
    "/ui/models?env=dev",
    "/ui/schedules",
)


def _settings(tmp_path, redis_url: str, tokens: str = TOKEN) -> Settings:
    return Settings(
        _env_file=None,
        MLSYS_HOME=str(tmp_path / "home"),
        REDIS_URL=redis_url,
        MLSYS_API_TOKENS=tokens,
    )


@pytest.fixture
def served(tmp_path, redis_client, redis_url):
    """The app with authentication on, over HTTP, with the demo model registered."""
    config = _settings(tmp_path, redis_url)
    config.alias_wait_seconds = 240  # an alias move waits for a worker that may start slowly
    run_demo(
        open_warehouse(settings=config),
        open_store(settings=config),
        config,
        rows=500,
        say=lambda *_: None,
    )
    celery = create_celery(config)
    app = create_app({"SETTINGS": config, "CELERY_APP": celery})
    with serve_wsgi(app) as url:
        yield url, JobStore.from_url(redis_url)
    celery.close()


def _csrf(response: requests.Response) -> str:
    match = CSRF.search(response.text)
    assert match, "no CSRF field in the page"
    return match.group(1)


def _sign_in(url: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{url}/ui/signin")
    answer = browser.post(
        f"{url}/ui/signin",
        data={"token": TOKEN, "csrf_token": _csrf(form), "next": "/ui/jobs"},
        allow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return browser


def api_get(url: str, path: str) -> dict:
    answer = requests.get(url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _add_jobs(jobs: JobStore, count: int) -> list[str]:
    """`count` predict jobs in every state, as the engine records them."""
    ids = []
    params = {
        "env": "dev",
        "input_table": "mlsys-local.titanic.passengers",
        "output_table": "mlsys-local.titanic.predictions",
        "model_name": "titanic-survival",
        "model_version": "latest",
    }
    for n in range(count):
        job, _ = jobs.create(NewJob(JobKind.PREDICT, params, "ui-tester", rows_total=1000 + n))
        job_id = job.job_id
        ids.append(job_id)
        kind = n % 5
        if kind == 0:
            continue  # queued
        jobs.claim(job_id, "plan", 1, 60, "w1:4711")  # running
        jobs.record_plan(job_id, [{}, {}], {}, 1000 + n)  # shard:0, shard:1 and commit
        jobs.set_progress(job_id, 0, 300)
        if kind == 2:
            jobs.succeed(job_id, {"rows_written": 1000 + n, "model": "m/v1"})
        elif kind == 3:
            jobs.fail(job_id, "shard:1: boom <b>not html</b>", error_type="SchemaMismatch")
        elif kind == 4:
            jobs.cancel(job_id)
    return ids


def test_signed_out_browsers_are_sent_to_sign_in_and_feeds_answer_401(served):
    url, _ = served
    page = requests.get(f"{url}/ui/jobs?state=running", allow_redirects=False)
    assert page.status_code == 303
    assert page.headers["Location"] == "/ui/signin?next=/ui/jobs?state%3Drunning"
    feed = requests.get(f"{url}/ui/jobs/live")
    assert feed.status_code == 401 and feed.json()["signin"] == "/ui/signin"
    # An API bearer token is not a dashboard session.
    bearer = requests.get(
        f"{url}/ui/jobs", headers={"Authorization": f"Bearer {TOKEN}"}, allow_redirects=False
    )
    assert bearer.status_code == 303


def test_sign_in_sets_a_strict_httponly_cookie_and_sign_out_ends_the_session(served):
    url, _ = served
    browser = requests.Session()
    form = browser.get(f"{url}/ui/signin?next=/ui/models")
    wrong = browser.post(
        f"{url}/ui/signin", data={"token": "nope", "csrf_token": _csrf(form), "next": "/ui/models"}
    )
    assert wrong.status_code == 401 and "That token is not valid." in wrong.text
    assert "nope" not in wrong.text
    answer = browser.post(
        f"{url}/ui/signin",
        data={"token": TOKEN, "csrf_token": _csrf(form), "next": "/ui/models"},
        allow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/ui/models"
    cookie = answer.headers["Set-Cookie"]
    for attribute in ("mlsys_session=", "HttpOnly", "SameSite=Strict", "Path=/;"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test
    assert TOKEN not in cookie
    jobs = browser.get(f"{url}/ui/jobs")
    assert jobs.status_code == 200 and "Signed in as" in jobs.text
    assert "AUTHENTICATION IS OFF" not in jobs.text
    stolen = browser.cookies.get("mlsys_session")

    out = browser.post(f"{url}/ui/signout", data={"csrf_token": _csrf(jobs)}, allow_redirects=False)
    assert out.status_code == 303
    assert browser.get(f"{url}/ui/jobs", allow_redirects=False).status_code == 303
    # The old cookie replayed after sign-out names no session any more.
    replay = requests.get(
        f"{url}/ui/jobs/live", cookies={"mlsys_session": stolen}, allow_redirects=False
    )
    assert replay.status_code == 401


def test_a_dashboard_session_opens_the_api_documentation_and_nothing_else_of_the_api(served):
    url, _ = served
    browser = _sign_in(url)
    # The session cookie goes to the whole site, so a browser sends it to the documentation.
    (session,) = [c for c in browser.cookies if c.name == "mlsys_session"]
    assert session.path == "/"
    jobs = browser.get(f"{url}/ui/jobs")
    assert 'href="/docs"' in jobs.text  # the dashboard links the documentation

    page = browser.get(f"{url}/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    document = browser.get(f"{url}/openapi.json")
    assert document.status_code == 200 and "/predict" in document.json()["paths"]

    for path in ("/docs", "/openapi.json"):
        signed_out = requests.get(f"{url}{path}", timeout=30)
        assert signed_out.status_code == 401, path
        assert signed_out.headers["WWW-Authenticate"].startswith("Bearer")
        forged = requests.get(f"{url}{path}", cookies={"mlsys_session": "x.y"}, timeout=30)
        assert forged.status_code == 401, path

    # Every other API route still wants a bearer token, whatever cookie the browser carries.
    body = {
        "model_name": "titanic-survival",
        "input_table": "mlsys-local.titanic.passengers",
        "output_table": "mlsys-local.scores.cookie",
    }
    assert browser.post(f"{url}/predict", json=body, timeout=30).status_code == 401
    assert browser.get(f"{url}/jobs", timeout=30).status_code == 401
    assert browser.get(f"{url}/models", timeout=30).status_code == 401

    out = browser.post(f"{url}/ui/signout", data={"csrf_token": _csrf(jobs)}, allow_redirects=False)
    assert out.status_code == 303
    assert not [c for c in browser.cookies if c.name == "mlsys_session"]
    assert browser.get(f"{url}/docs", timeout=30).status_code == 401


def test_the_session_cookie_is_secure_behind_tls(served):
    url, _ = served
    browser = requests.Session()
    form = browser.get(f"{url}/ui/signin")
    answer = browser.post(
        f"{url}/ui/signin",
        data={"token": TOKEN, "csrf_token": _csrf(form)},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    assert answer.status_code == 303
    assert "Secure" in answer.headers["Set-Cookie"]


def test_a_post_without_or_with_a_wrong_csrf_token_is_400(served):
    url, jobs = served
    browser = _sign_in(url)
    (job_id,) = _add_jobs(jobs, 1)
    target = f"{url}/ui/jobs/{job_id}/cancel"
    assert browser.post(target, data={}).status_code == 400
    refused = browser.post(target, data={"csrf_token": "x" * 43})
    assert refused.status_code == 400 and "CSRF" in refused.text
    assert jobs.get(job_id).state == "queued"
    # The sign-in form needs its token too.
    assert requests.post(f"{url}/ui/signin", data={"token": TOKEN}).status_code == 400


def test_a_cross_origin_post_is_refused_even_with_the_right_token(served):
    url, jobs = served
    browser = _sign_in(url)
    (job_id,) = _add_jobs(jobs, 1)
    token = _csrf(browser.get(f"{url}/ui/jobs"))
    target = f"{url}/ui/jobs/{job_id}/cancel"
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": url.replace("127.0.0.1", "localhost")},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        refused = browser.post(target, data={"csrf_token": token}, headers=headers)
        assert refused.status_code == 403, headers
    assert jobs.get(job_id).state == "queued"
    same = browser.post(
        target, data={"csrf_token": token, "next": "/ui/jobs"}, headers={"Origin": url}
    )
    assert same.status_code == 200 and same.url == f"{url}/ui/jobs"
    assert jobs.get(job_id).state == "cancelled"


def test_every_page_answers_for_an_empty_system_and_for_500_jobs(served):
    url, jobs = served
    browser = _sign_in(url)
    for path in PAGES:
        answer = browser.get(url + path)
        assert answer.status_code == 200, (path, answer.status_code)
    assert "No jobs yet" in browser.get(f"{url}/ui/jobs").text

    ids = _add_jobs(jobs, 500)
    for path in PAGES:
        answer = browser.get(url + path)
        assert answer.status_code == 200, (path, answer.status_code)
    listed = browser.get(f"{url}/ui/jobs?limit=500").text
    assert listed.count("<tr data-job-id=") == 500
    feed = browser.get(f"{url}/ui/jobs/live?state=failed&limit=500").json()
    assert len(feed["rows"]) == 100 and {r["state"] for r in feed["rows"]} == {"failed"}
    for job_id in ids[:5]:
        for path in (f"/ui/jobs/{job_id}", f"/ui/jobs/{job_id}/live"):
            assert browser.get(url + path).status_code == 200, path
    failed = browser.get(f"{url}/ui/jobs/{ids[3]}").text
    assert "The input table does not fit the model" in failed
    assert "&lt;b&gt;not html&lt;/b&gt;" in failed  # the engine's message, escaped
    assert browser.get(f"{url}/ui/jobs/{'f' * 32}").status_code == 404
    assert browser.get(f"{url}/ui/jobs?state=exploded").status_code == 400


def test_jobs_come_in_pages_and_an_admin_can_pick_a_principal(served):
    url, jobs = served
    browser = _sign_in(url)
    ids = _add_jobs(jobs, 120)
    seen: list[str] = []
    page = browser.get(f"{url}/ui/jobs")
    while True:
        seen += re.findall(r'<tr data-job-id="([0-9a-f]+)"', page.text)
        older = re.search(r'<a href="([^"]+)">Older jobs', page.text)
        if older is None:
            break
        page = browser.get(url + older.group(1).replace("&amp;", "&"))
        assert page.status_code == 200 and "Newest jobs" in page.text
    assert seen == ids[::-1]  # every job once, newest first, in pages of 50
    mine = browser.get(f"{url}/ui/jobs?principal=ui-tester&state=queued").text
    assert mine.count("<tr data-job-id=") == 24
    assert "No jobs match" in browser.get(f"{url}/ui/jobs?principal=nobody").text
    assert browser.get(f"{url}/ui/jobs?principal=a%20b").status_code == 400
    assert browser.get(f"{url}/ui/jobs?page_token=forged").status_code == 400


def test_pages_carry_a_strict_content_security_policy(served):
    url, _ = served
    browser = _sign_in(url)
    page = browser.get(f"{url}/ui/jobs")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script>" not in page.text  # no inline script: the policy would block it
    assets = re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page.text)
    assert assets and all(requests.get(url + a).status_code == 200 for a in assets)


def test_moving_an_alias_from_the_models_page(served, tmp_path, redis_url):
    url, _ = served
    browser = _sign_in(url)
    page = browser.get(f"{url}/ui/models?env=dev")
    assert "titanic-survival" in page.text and "Move an alias" in page.text
    # The move is a job: a worker writes the registry, the page waits for it.
    env = {**os.environ, "MLSYS_HOME": str(tmp_path / "home"), "REDIS_URL": redis_url}
    with celery_worker(env, repo_root(), name="ui-aliases"):
        moved = browser.post(
            f"{url}/ui/models/titanic-survival/aliases",
            data={"csrf_token": _csrf(page), "env": "dev", "alias": "champion", "version": "v1"},
        )
    assert moved.status_code == 200
    assert "Moved: titanic-survival@champion \u2192 v1." in moved.text
    api = requests.get(
        f"{url}/models/titanic-survival?env=dev", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    assert api["versions"][0]["aliases"] == ["champion"]
    synced = browser.post(f"{url}/ui/models/sync", data={"csrf_token": _csrf(page), "env": "dev"})
    assert synced.status_code == 200 and "/ui/jobs/" in synced.url
    job = api_get(url, f"/jobs/{synced.url.rsplit('/', 1)[1]}")
    assert (job["kind"], job["principal"], job["params"]) == (
        "registry_sync",
        "admin",
        {"env": "dev"},
    )
    bad = browser.post(
        f"{url}/ui/models/titanic-survival/aliases",
        data={"csrf_token": _csrf(page), "env": "dev", "alias": "v2", "version": "v1"},
    )
    assert bad.status_code == 400 and "alias" in bad.text.lower()


def test_with_auth_off_every_page_shows_the_warning_banner(tmp_path, redis_client, redis_url):
    config = _settings(tmp_path, redis_url, tokens="")
    app = create_app({"SETTINGS": config, "CELERY_APP": create_celery(config)})
    with serve_wsgi(app) as url:
        for path in ("/ui/jobs", "/ui/models", "/ui/schedules"):
            page = requests.get(url + path)
            assert page.status_code == 200
            assert "AUTHENTICATION IS OFF" in page.text and 'role="alert"' in page.text
            assert AUTH_OFF_WARNING.split(": ", 1)[1] in page.text  # the log's very words
            assert "Sign out" not in page.text
        # Forms still need a CSRF token (from the mlsys_csrf cookie) and this origin.
        assert requests.post(f"{url}/ui/jobs/{'a' * 32}/cancel").status_code == 400


def test_the_dashboard_is_not_part_of_the_api_document(served):
    url, _ = served
    spec = requests.get(f"{url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert spec["paths"] and not any(path.startswith("/ui") for path in spec["paths"])


def test_every_dashboard_route_refuses_a_signed_out_browser(served):
    url, _ = served
    app = create_app({"SETTINGS": _settings(Path("/nonexistent"), "redis://127.0.0.1:1/0")})
    public = {"ui.static", "ui.session.signin", "ui.session.signin_submit"}
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("ui.")]
    assert len(rules) >= 10
    for rule in rules:
        if rule.endpoint in public:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "x" * 32, rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            answer = requests.request(method, url + path, allow_redirects=False)
            if method == "GET" and not rule.endpoint.endswith("_live"):
                assert answer.status_code == 303, (method, path)
                assert answer.headers["Location"].startswith("/ui/signin?next=")
            else:
                assert answer.status_code == 401, (method, path, answer.status_code)


def test_a_monitored_job_shows_its_drift_summary_and_prediction_charts(served, tmp_path):
    url, jobs = served
    config = _settings(tmp_path, "redis://unused")
    warehouse = open_warehouse(settings=config)
    (job_id,) = _add_jobs(jobs, 1)
    # The monitoring of a job as the pipeline stores it: profiles of its outputs, a summary.
    profile = Profile(
        features={
            PREDICTION: reference_feature(pa.array(["1"] * 30 + ["0"] * 70)),
            PROBABILITY: reference_feature(pa.array([0.5 + n / 200 for n in range(100)])),
            "Age": reference_feature(pa.array([float(n) for n in range(100)])),
        },
        rows=100,
    )
    report = compare(profile, None)
    warehouse.merge(
        stats_table(config, "dev"), stats_rows(job_id, "titanic-survival", 1, profile, report), KEYS
    )
    summary = {
        **report.summary(),
        "has_reference": True,
        "status": "warn",
        "worst": [
            {
                "feature": "Age",
                "status": "warn",
                "psi": 0.21,
                "null_rate_change": 0.0,
                "unseen_rate": None,
                "reasons": ["PSI 0.21 >= 0.1"],
            }
        ],
    }
    jobs.claim(job_id, "plan", 1, 60, "w1:4711")  # running
    jobs.succeed(job_id, {"rows_written": 100, "monitoring": summary})
    browser = _sign_in(url)
    page = browser.get(f"{url}/ui/jobs/{job_id}").text
    assert "Monitoring" in page and "PSI 0.21 &gt;= 0.1" in page
    assert '<h2 id="chart-0-title">Predictions</h2>' in page
    assert "Probability of the predicted class" in page
    assert page.count("<rect ") == 2 + 10  # two classes, ten probability bins
    assert "<td>0</td><td>70</td>" in page


def test_schedules_list_their_next_run_and_pause_and_resume(served):
    url, _ = served
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {TOKEN}"
    predict = {
        "env": "dev",
        "input_table": "mlsys-local.titanic.passengers",
        "output_table": "mlsys-local.titanic.scheduled",
        "model_name": "titanic-survival",
        "model_version": "latest",
    }
    created = api.post(
        f"{url}/schedules",
        json={
            "name": "nightly",
            "cron": "0 6 * * *",
            "timezone": "Europe/Paris",
            "predict": predict,
        },
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["schedule_id"]
    browser = _sign_in(url)
    page = browser.get(f"{url}/ui/schedules")
    assert "nightly" in page.text and "0 6 * * *" in page.text and "Europe/Paris" in page.text
    assert "not run yet" in page.text
    next_run = created.json()["next_run_at"]
    assert next_run and next_run[:10] in page.text
    paused = browser.post(
        f"{url}/ui/schedules/{schedule_id}/pause", data={"csrf_token": _csrf(page)}
    )
    assert paused.status_code == 200 and "Paused" in paused.text and "Resume" in paused.text
    assert api.get(f"{url}/schedules/{schedule_id}").json()["paused"] is True
    resumed = browser.post(
        f"{url}/ui/schedules/{schedule_id}/resume", data={"csrf_token": _csrf(paused)}
    )
    assert resumed.status_code == 200 and "Resumed." in resumed.text
    assert api.get(f"{url}/schedules/{schedule_id}").json()["next_run_at"] is not None
    missing = browser.post(f"{url}/ui/schedules/{'0' * 32}/pause", data={"csrf_token": _csrf(page)})
    assert missing.status_code == 404


def test_a_session_acts_as_its_tokens_principal_with_its_scopes(tmp_path, redis_client, redis_url):
    reader_token = "reader-token-0123456789abcdef"  # pragma: allowlist secret
    principals = [
        {"name": "analyst", "token_sha256": [token_hash(reader_token)], "scopes": ["predict"]}
    ]
    config = Settings(
        _env_file=None,
        MLSYS_HOME=str(tmp_path / "home"),
        REDIS_URL=redis_url,
        MLSYS_API_TOKENS=TOKEN,
        MLSYS_API_PRINCIPALS=json.dumps(principals),
    )
    run_demo(open_warehouse(settings=config), open_store(settings=config), config, rows=200)
    app = create_app({"SETTINGS": config, "CELERY_APP": create_celery(config)})
    with serve_wsgi(app) as url:
        browser = requests.Session()
        form = browser.get(f"{url}/ui/signin")
        browser.post(f"{url}/ui/signin", data={"token": reader_token, "csrf_token": _csrf(form)})
        models = browser.get(f"{url}/ui/models")
        assert 'Signed in as <strong class="name">analyst</strong>' in models.text
        assert "titanic-survival" in models.text and "Move an alias" not in models.text
        refused = browser.post(
            f"{url}/ui/models/titanic-survival/aliases",
            data={"csrf_token": _csrf(models), "env": "dev", "alias": "champion", "version": "v1"},
        )
        assert refused.status_code == 403 and "analyst may not do this" in refused.text
        # The prediction form offers only what the analyst may ask for, and checks the rest.
        form = browser.get(f"{url}/ui/predict")
        assert "WRITE_APPEND" in form.text and "WRITE_TRUNCATE" not in form.text
        fields = {
            "csrf_token": _csrf(form),
            "env": "dev",
            "input_table": "mlsys-local.titanic.passengers",
            "output_table": "mlsys-local.titanic.analyst_out",
            "model_name": "titanic-survival",
            "write_disposition": "WRITE_TRUNCATE",  # crafted: the form does not offer it
        }
        crafted = browser.post(f"{url}/ui/predict", data=fields)
        assert crafted.status_code == 403 and "truncate" in crafted.text
        no_csrf = browser.post(f"{url}/ui/predict", data={**fields, "csrf_token": ""})
        assert no_csrf.status_code == 400 and "CSRF" in no_csrf.text
        # The admin token's session is another principal.
        page = _sign_in(url).get(f"{url}/ui/jobs").text
        assert 'Signed in as <strong class="name">admin</strong>' in page
