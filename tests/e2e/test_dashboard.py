"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, against
the real stack (gunicorn, a Celery worker, Redis, DuckDB in tmp).

Skipped only where /usr/bin/chromium is missing and MLSYS_REQUIRE_EMULATORS is unset (CI sets
it, so CI fails instead). The screenshots of README are written by these tests: run them with
MLSYS_UPDATE_SCREENSHOTS=1 to refresh docs/dashboard-*.png.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import redis
import requests

from mlsys import datasets
from tests.integration.jobs_support import INPUT, OUTPUT, make_stack
from tests.models import FEATURES, ScriptedClassifier
from tests.services import free_port, process, repo_root, serve_wsgi, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
# Flags this closed network needs: no background connections, no QUIC, no component updates.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "dashboard-token-0123456789"  # pragma: allowlist secret
# A principal of MLSYS_API_PRINCIPALS, with a name that has word breaks a browser could use.
ADMIN = "ml-platform-admin"
PRINCIPALS = [
    {
        "name": ADMIN,
        "token_sha256": [hashlib.sha256(TOKEN.encode()).hexdigest()],
        "scopes": ["predict", "truncate", "registry", "admin"],
    }
]
BIN = Path(sys.executable).parent
ROWS = 20_000  # 20 batches of 1,000 rows
SCREENSHOTS = repo_root() / "docs"


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, never a downloaded one, driven by Playwright (the `browser` group)."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright is missing: uv sync --group browser (.ci/test does)")
    if missing:
        if os.environ.get("MLSYS_REQUIRE_EMULATORS"):
            pytest.fail("; ".join(missing))
        pytest.skip("; ".join(missing))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_url):
    """gunicorn + a Celery worker over a 20,000-row table and three scripted models."""
    tmp_path = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    stack = make_stack(
        tmp_path,
        redis_url.rsplit("/", 1)[0] + "/7",  # a database of its own: other tests flush /0
        MLSYS_API_PRINCIPALS=json.dumps(PRINCIPALS),
        # Every test signs in afresh, more often than a person would (limits: their own tests).
        MLSYS_SIGNIN_RATE_LIMIT="",
        MLSYS_RECOVERY_TIMEOUT="10",
    )
    redis.Redis.from_url(stack.settings.redis_url).flushdb()
    stack.load_table(ROWS)
    poisoned = datasets.titanic(2000)
    poisoned.loc[poisoned.index[-1], "Sex"] = "poison"
    stack.warehouse.write(poisoned, INPUT.with_table("poisoned"), "WRITE_TRUNCATE")
    for name, delay in (("scripted", 0.3), ("scripted", 0.3), ("slow", 3.0)):  # scripted v1, v2
        stack.register(ScriptedClassifier(delay=delay).fit(pd.DataFrame(columns=FEATURES)), name)
    commands = {
        "web": [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "8",
            "web:create_app()",
        ],
        "worker": [
            str(BIN / "celery"),
            "-A",
            "worker",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
            "--without-mingle",
            "--without-gossip",
        ],
    }
    with contextlib.ExitStack() as running:
        for name, args in commands.items():
            running.enter_context(process(args, stack.env, stack.cwd, tmp_path / f"{name}.log"))
        stack.url = f"http://127.0.0.1:{port}"
        stack.api = requests.Session()
        stack.api.headers["Authorization"] = f"Bearer {TOKEN}"
        wait_for(lambda: _up(stack.url), timeout=60, what="gunicorn")
        yield stack


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.RequestException:
        return False


def _state(stack, job_id: str) -> str:
    return stack.api.get(f"{stack.url}/jobs/{job_id}", timeout=30).json()["state"]


def _submit(stack, model: str = "scripted", table: str = "passengers", **extra) -> str:
    body = {
        "env": "dev",
        "input_table": str(INPUT.with_table(table)),
        "output_table": str(OUTPUT.with_table(f"out_{model}_{table}")),
        "model_name": model,
        **extra,
    }
    answer = stack.api.post(f"{stack.url}/predict", json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    return answer.json()["job_id"]


@pytest.fixture
def page(browser, stack):
    """A fresh browser profile (no cookies) with script and policy errors collected."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


def _sign_in(page, stack, then: str = "/ui/jobs") -> None:
    page.goto(stack.url + then)
    assert "/ui/signin" in page.url
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(stack.url + then) + "$"))


def _row(page, job_id: str):
    return page.locator(f'tr[data-job-id="{job_id}"]')


def _shot(page, name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("MLSYS_UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / name)
    return path


def test_a_submitted_job_appears_and_its_progress_bar_reaches_100_without_reloading(page, stack):
    _sign_in(page, stack)
    page.evaluate("window.notReloaded = true")
    job_id = _submit(stack, shards=2)
    row = _row(page, job_id)
    row.wait_for(timeout=30_000)  # appeared by itself
    seen = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        seen.append(float(row.locator("progress").get_attribute("value")))
        if row.get_attribute("data-state") == "succeeded":
            break
        time.sleep(0.2)
    assert row.locator(".state").inner_text() == "succeeded"
    assert seen[-1] == 100.0 and min(seen) < 100.0, seen
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    assert page.evaluate("window.notReloaded") is True
    assert "20,000 / 20,000 rows" in row.inner_text()
    assert page.errors == []


def test_the_job_page_follows_a_job_to_success_without_reloading(page, stack, tmp_path):
    _sign_in(page, stack)
    job_id = _submit(stack, shards=2)
    page.goto(f"{stack.url}/ui/jobs/{job_id}")
    page.evaluate("window.notReloaded = true")
    assert page.locator("#job-state").inner_text() in ("queued", "running")
    page.wait_for_selector('#job-state:text-is("succeeded")', timeout=180_000)
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#job-progress").get_attribute("value") == "100.0"
    shards = page.locator("table.shards tbody tr")
    assert shards.count() == 2
    assert all("done" in text for text in shards.all_inner_texts())
    for shard in shards.all():  # the engine's times: when each started, how long it took
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", _cell(shard, "Started"))
        assert re.fullmatch(r"\d+ s|\d+ min( \d+ s)?", _cell(shard, "Took"))
    assert "rows written" in page.locator("#live").inner_text()
    # The models here were saved without a training profile: no green "ok" for a comparison
    # that never happened.
    assert "without a training profile" in page.locator("#live").inner_text()
    assert page.locator("#drift-status").inner_text() == "not compared"
    # The charts of what the model predicted have titled axes with values.
    titles = page.locator(".chart .x-title").all_inner_texts()
    assert titles and titles[0] == "Predicted value", titles
    assert page.locator(".chart .y-title").first.inner_text() == "Rows"
    assert page.locator(".chart .y-ticks span").first.inner_text() != "0"
    assert f"WHERE JobId = '{job_id}'" in page.locator("pre.query").inner_text()
    assert page.errors == []
    _shot(page, "dashboard-job.png", tmp_path)


def test_a_failed_job_says_why_in_plain_words(page, stack):
    _sign_in(page, stack)
    job_id = _submit(stack, table="poisoned")
    wait_for(lambda: _state(stack, job_id) == "failed", timeout=120, what="the job to fail")
    page.goto(f"{stack.url}/ui/jobs/{job_id}")
    box = page.locator(".error-box")
    assert "Why it failed" in box.inner_text()
    assert "ModelFailed" in box.inner_text()
    assert box.locator(".error-summary").inner_text().startswith("The model raised an error")
    assert "poison" in box.locator(".error-detail").inner_text()
    states = page.locator("table.shards tbody tr .state").all_inner_texts()
    assert states and set(states) <= {"done", "failed"}, states  # none "running" for good
    assert page.locator("pre.query").count() == 0  # nothing landed: no query to offer
    page.goto(f"{stack.url}/ui/jobs?state=failed")
    reason = _row(page, job_id).locator(".reason")
    assert reason.inner_text().startswith("The model raised an error")


def _cell(row, label: str) -> str:
    return row.locator(f'td[data-label="{label}"]').inner_text().strip()


def test_a_cancelled_job_ends_its_shards_and_offers_no_output_query(page, stack):
    _sign_in(page, stack)
    job_id = _submit(stack, model="slow", shards=2)
    wait_for(lambda: _state(stack, job_id) == "running", timeout=60, what="the job to run")
    wait_for(
        lambda: any(
            s["started_at"] for s in stack.api.get(f"{stack.url}/jobs/{job_id}").json()["shards"]
        ),
        timeout=60,
        what="a shard to start",
    )
    assert stack.api.delete(f"{stack.url}/jobs/{job_id}").status_code == 200
    page.goto(f"{stack.url}/ui/jobs/{job_id}")
    assert page.locator("#job-state").inner_text() == "cancelled"
    shards = page.locator("table.shards tbody tr").all()
    assert {_cell(s, "State") for s in shards} == {"cancelled"}
    started = [s for s in shards if _cell(s, "Started") != "-"]
    assert started and all(_cell(s, "Took") != "-" for s in started)
    assert all("so far" not in _cell(s, "Took") for s in shards)  # not still running
    assert page.locator("pre.query").count() == 0
    assert page.errors == []


def test_ui_without_a_slash_signed_out_leads_to_the_sign_in_page(page, stack):
    answer = page.goto(stack.url + "/ui")
    assert answer.ok and "/ui/signin" in page.url
    assert page.get_by_role("heading", name="Sign in").is_visible()
    # The tokens of this deployment come from principals: MLSYS_API_TOKENS is not the place.
    help_text = page.locator("#token-help").inner_text()
    assert "MLSYS_API_TOKENS" not in help_text and "your principal" in help_text


def test_the_next_run_of_a_schedule_is_its_cron_time_in_its_zone(page, stack):
    body = {
        "name": "paris-morning",
        "cron": "0 6 * * *",
        "timezone": "Europe/Paris",
        "predict": {
            "env": "dev",
            "input_table": str(INPUT.with_table("passengers")),
            "output_table": str(OUTPUT.with_table("scheduled")),
            "model_name": "scripted",
        },
    }
    created = stack.api.post(f"{stack.url}/schedules", json=body, timeout=30)
    assert created.status_code == 201, created.text
    schedule_id = created.json()["schedule_id"]
    _age_schedule(stack, schedule_id, hours=3)  # as if created three hours ago
    paris = ZoneInfo("Europe/Paris")
    now = datetime.now(paris)
    due = now.replace(hour=6, minute=0, second=0, microsecond=0)
    if due <= now:
        due = (now + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
    expected = due.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")  # 05:00 in winter
    _sign_in(page, stack, then="/ui/schedules")
    row = page.locator(f'tr[data-schedule-id="{schedule_id}"]')
    assert _cell(row, "Next run") == expected
    stack.api.delete(f"{stack.url}/schedules/{schedule_id}")


def _age_schedule(stack, schedule_id: str, hours: float) -> None:
    """Move the beat entry's last run back, as time passing would."""
    from redbeat.schedulers import ensure_conf

    from worker.app import create_celery
    from worker.beat import ZonedEntry

    app = create_celery(stack.settings)
    ensure_conf(app)
    entry = ZonedEntry.from_key(ZonedEntry.generate_key(app, f"schedule-{schedule_id}"), app=app)
    entry.last_run_at = entry.last_run_at - timedelta(hours=hours)
    entry.save()


# How many lines the text inside an element takes (the tops of its text's boxes).
_TEXT_LINES = """e => {
  const tops = new Set(), walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const box of range.getClientRects()) tops.add(Math.round(box.top));
  }
  return tops.size;
}"""


def test_principal_names_do_not_break_inside(page, stack):
    _sign_in(page, stack)
    job_id = _submit(stack)
    _row(page, job_id).wait_for(timeout=30_000)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for name in (
            page.locator(".who strong"),
            _row(page, job_id).locator('td[data-label="Principal"]'),
        ):
            assert name.inner_text().strip() == ADMIN
            lines = name.evaluate(_TEXT_LINES)
            assert lines == 1, (width, lines, name.evaluate("e => e.outerHTML"))


def test_cancelling_a_big_job_from_the_list(page, stack):
    _sign_in(page, stack)
    job_id = _submit(stack, model="slow")
    row = _row(page, job_id)
    page.wait_for_selector(f'tr[data-job-id="{job_id}"][data-state="running"]', timeout=60_000)
    row.get_by_role("button", name=re.compile("Cancel job")).click()  # confirm() accepted
    page.wait_for_selector(f'tr[data-job-id="{job_id}"][data-state="cancelled"]', timeout=60_000)
    assert row.locator(".state").inner_text() == "cancelled"
    assert row.get_by_role("button").count() == 0  # nothing left to cancel
    assert stack.api.get(f"{stack.url}/jobs/{job_id}").json()["state"] == "cancelled"
    assert page.errors == []


def test_moving_an_alias_on_the_models_page(page, stack):
    _sign_in(page, stack, then="/ui/models")
    for version in ("v1", "v2"):
        form = page.get_by_role("group", name="Move an alias of scripted")
        form.get_by_label("Alias").fill("champion")
        form.get_by_label("Version").select_option(version)
        form.get_by_role("button", name="Move alias").click()
        page.wait_for_load_state()
        assert (
            page.get_by_role("status").inner_text() == f"Moved: scripted@champion \u2192 {version}."
        )
        listed = stack.api.get(f"{stack.url}/models/scripted", params={"env": "dev"}).json()
        aliases = {v["model_version"]: v["aliases"] for v in listed["versions"]}
        assert aliases == {"v1": [], "v2": [], version: ["champion"]}
        cell = page.locator(f'section:has(h2:text-is("scripted")) tr[data-version="{version}"]')
        assert "@champion" in cell.inner_text()
    # The alias form's hint is a line of its own, not grey text that looks like a value.
    form = page.get_by_role("group", name="Move an alias of scripted")
    assert form.get_by_label("Alias").get_attribute("placeholder") is None
    page.goto(f"{stack.url}/ui/jobs?kind=alias_move")
    did = page.locator('tr[data-state="succeeded"] .did').all_inner_texts()
    assert did[:2] == ["alias champion: v1 \u2192 v2", "alias champion: none \u2192 v1"], did
    assert page.locator("tr[data-job-id] progress").count() == 0  # no empty 0% bars
    page.goto(f"{stack.url}/ui/models")
    page.get_by_role("button", name="Sync the registry of dev").click()
    page.wait_for_selector('#job-state:text-is("succeeded")', timeout=60_000)
    assert re.fullmatch(
        r"3 versions synced(, no changes| \(.*\))", page.locator("#job-did").inner_text()
    )
    assert page.locator("#job-progress").count() == 0
    assert page.errors == []


def test_a_post_without_its_csrf_token_is_refused_with_400(page, stack):
    _sign_in(page, stack)
    job_id = _submit(stack, model="slow")
    form = _row(page, job_id).locator("form")
    form.wait_for(timeout=30_000)
    form.evaluate("f => f.querySelector('input[name=csrf_token]').remove()")
    with page.expect_response(re.compile(r"/cancel$")) as answer:
        form.evaluate("f => f.submit()")
    assert answer.value.status == 400
    assert "CSRF" in page.locator("main").inner_text()
    assert _state(stack, job_id) in ("queued", "running")
    stack.api.delete(f"{stack.url}/jobs/{job_id}")


def test_a_form_posted_from_another_origin_is_refused(browser, page, stack):
    """Another port of the same host is the same *site*, so the Strict cookie goes along: the
    origin check must refuse it, even when the attacker somehow knows the CSRF token."""
    _sign_in(page, stack)
    job_id = _submit(stack, model="slow")
    form = _row(page, job_id).locator("form")
    form.wait_for(timeout=30_000)
    token = form.locator("input[name=csrf_token]").get_attribute("value")
    evil = (
        "<!doctype html><title>win a prize</title>"
        f'<form id="f" method="post" action="{stack.url}/ui/jobs/{job_id}/cancel">'
        f'<input name="csrf_token" value="{token}"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html")])
        return [evil.encode()]

    with serve_wsgi(app) as evil_url:
        with page.expect_response(re.compile(r"/cancel$")) as answer:
            page.goto(evil_url)
        assert answer.value.status == 403
        assert answer.value.request.headers.get("origin") == evil_url
    assert _state(stack, job_id) in ("queued", "running")
    stack.api.delete(f"{stack.url}/jobs/{job_id}")


def test_after_signing_out_the_dashboard_refuses_the_browser(page, stack):
    _sign_in(page, stack)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/ui/signin"))
    assert "You are signed out." in page.locator("main").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "mlsys_session"]
    page.goto(f"{stack.url}/ui/models")
    assert "/ui/signin" in page.url
    status = page.evaluate("fetch('/ui/jobs/live').then(r => r.status)")
    assert status == 401


def test_the_pages_fit_a_phone_and_the_screenshots(page, stack, tmp_path):
    _sign_in(page, stack)
    finished = [_submit(stack, shards=2), _submit(stack, table="poisoned")]
    cancelled = _submit(stack, model="slow")
    stack.api.delete(f"{stack.url}/jobs/{cancelled}")
    for job_id in finished:
        wait_for(lambda j=job_id: _state(stack, j) in ("succeeded", "failed"), 120)
    running = _submit(stack, model="slow")
    page.wait_for_selector(f'tr[data-job-id="{running}"][data-state="running"]', timeout=60_000)
    wait_for(
        lambda: float(_row(page, running).locator("progress").get_attribute("value")) > 0,
        timeout=60,
        what="the slow job to make progress",
    )
    assert page.locator("tr[data-job-id]").count() >= 4
    _shot(page, "dashboard-jobs.png", tmp_path)
    page.set_viewport_size({"width": 390, "height": 844})
    pages = ("/ui/jobs", f"/ui/jobs/{running}", "/ui/models", "/ui/schedules")
    for path in (*pages, "/ui/predict", "/ui/schedules/new"):
        page.goto(stack.url + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (path, overflow)
    assert page.errors == []
    stack.api.delete(f"{stack.url}/jobs/{running}")


def _fill(page, **fields) -> None:
    for name, value in fields.items():
        control = page.locator(f"#{name}")
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)


def test_a_new_prediction_from_the_form_refused_as_the_api_would_then_run_again(
    page, stack, tmp_path
):
    _sign_in(page, stack)
    page.get_by_role("navigation", name="Dashboard").get_by_role(
        "link", name="New prediction"
    ).click()
    page.wait_for_url(re.compile(r"/ui/predict$"))
    missing = str(INPUT.with_table("no_such_table"))
    output = str(OUTPUT.with_table("from_the_form"))
    _fill(page, input_table=missing, model_name="scripted", model_version="v1")
    _fill(page, output_table=output, id_columns="PassengerId")
    body = {"env": "dev", "input_table": missing, "output_table": output}
    body |= {"model_name": "scripted", "model_version": "v1", "id_columns": ["PassengerId"]}
    api = stack.api.post(f"{stack.url}/predict", json=body, timeout=30)
    with page.expect_response(re.compile(r"/ui/predict$")) as answer:
        page.get_by_role("button", name="Start prediction").click()
    assert answer.value.status == api.status_code == 404
    said = " ".join(page.locator("#problem").inner_text().split())
    assert f"404 {api.json()['title']} {api.json()['detail']}" == said  # the API's words
    assert page.locator("#output_table").input_value() == output  # what was typed stays

    _fill(page, input_table="not a table")
    page.get_by_role("button", name="Start prediction").click()
    page.wait_for_selector("#problem")
    assert page.locator("#input_table").get_attribute("aria-invalid") == "true"
    assert page.locator("#input_table-error").is_visible()
    assert page.evaluate(_AUDIT) == []  # the refused form is labelled and readable too
    _shot(page, "dashboard-new-prediction.png", tmp_path)
    assert len(page.errors) == 2  # Chromium logs each 4xx page it loads; nothing else
    page.errors.clear()

    _fill(page, input_table=str(INPUT.with_table("passengers")))
    page.get_by_role("button", name="Start prediction").click()
    page.wait_for_url(re.compile(r"/ui/jobs/[0-9a-f]{32}\?started=1$"))
    first = page.url.split("/ui/jobs/")[1].split("?")[0]
    assert stack.api.get(f"{stack.url}/jobs/{first}").json()["params"]["output_table"] == output
    page.wait_for_selector('#job-state:text-is("succeeded")', timeout=120_000)

    page.get_by_role("button", name="Run again").click()
    page.wait_for_url(re.compile(r"/ui/jobs/[0-9a-f]{32}\?started=1$"))
    again = page.url.split("/ui/jobs/")[1].split("?")[0]
    assert again != first
    params = stack.api.get(f"{stack.url}/jobs/{again}").json()["params"]
    assert params == stack.api.get(f"{stack.url}/jobs/{first}").json()["params"]

    page.get_by_role("link", name="Clone into a new prediction").click()
    page.wait_for_url(re.compile(r"/ui/predict\?from="))
    assert page.locator("#output_table").input_value() == output
    assert page.locator("#model_version").input_value() == "v1"
    assert page.locator("#id_columns").input_value() == "PassengerId"
    options = page.locator("#write_disposition option").all_inner_texts()
    assert any("WRITE_TRUNCATE" in o for o in options)  # this principal may replace tables
    page.goto(f"{stack.url}/ui/jobs/{first}")
    page.get_by_role("link", name="Schedule it").click()
    page.wait_for_url(re.compile(r"/ui/schedules/new\?from="))
    assert page.locator("#output_table").input_value() == output
    assert page.locator("#model_name").input_value() == "scripted"
    wait_for(lambda: _state(stack, again) in ("succeeded", "failed"), 120)
    assert page.errors == []


def _next_runs(hour: int, minute: int, zone: str, count: int) -> list[datetime]:
    """The next `count` daily runs at hour:minute in `zone`, computed here without beat."""
    now = datetime.now(ZoneInfo(zone))
    day = (
        now.date()
        if now.time() < datetime.min.time().replace(hour=hour, minute=minute)
        else (now + timedelta(days=1)).date()
    )
    out = []
    for i in range(count):
        wall = datetime.combine(day + timedelta(days=i), datetime.min.time())
        out.append(wall.replace(hour=hour, minute=minute, tzinfo=ZoneInfo(zone)))
    return out


def test_creating_editing_and_deleting_a_schedule_with_a_preview_of_its_runs(page, stack, tmp_path):
    _sign_in(page, stack, then="/ui/schedules")
    page.get_by_role("link", name="New schedule").click()
    page.wait_for_url(re.compile(r"/ui/schedules/new$"))
    _fill(page, name="form-morning", cron="61 6 * * *", timezone="Europe/Paris")
    page.wait_for_selector("#preview-error")  # said while typing, before any submit
    assert "61" in page.locator("#preview-error").inner_text()
    _fill(page, cron="0 6 * * *")
    expected = [
        f"{run.strftime('%a %Y-%m-%d')} 06:00 Europe/Paris ({run.astimezone(UTC):%H:%M} UTC)"
        for run in _next_runs(6, 0, "Europe/Paris", 5)
    ]
    wait_for(
        lambda: page.locator("ol.runs li").all_inner_texts() == expected,
        timeout=30,
        what="the preview of the next five runs",
    )
    _shot(page, "dashboard-schedule.png", tmp_path)
    _fill(page, model_name="scripted", output_table=str(OUTPUT.with_table("scheduled_form")))
    with page.expect_response(re.compile(r"/ui/schedules/new$")) as answer:
        page.get_by_role("button", name="Create schedule").click()  # no input table
    assert answer.value.status == 400
    assert "Required" in page.locator("#input_table-error").inner_text()
    assert page.locator("#cron").input_value() == "0 6 * * *"  # what was typed stays
    page.errors.clear()  # Chromium logs the 400 page it loaded
    _fill(page, input_table=str(INPUT.with_table("passengers")))
    page.get_by_role("button", name="Create schedule").click()
    page.wait_for_url(re.compile(r"/ui/schedules\?changed=created$"))
    listed = stack.api.get(f"{stack.url}/schedules", timeout=30).json()["schedules"]
    (made,) = [s for s in listed if s["name"] == "form-morning"]
    assert (made["cron"], made["timezone"], made["predict"]["model_name"]) == (
        "0 6 * * *", "Europe/Paris", "scripted"
    )  # fmt: skip
    row = page.locator(f'tr[data-schedule-id="{made["schedule_id"]}"]')
    first = _next_runs(6, 0, "Europe/Paris", 1)[0].astimezone(UTC)
    assert _cell(row, "Next run") == first.strftime("%Y-%m-%d %H:%M:%S UTC")

    row.get_by_role("link", name="Edit schedule form-morning").click()
    page.wait_for_url(re.compile(r"/edit$"))
    _fill(page, cron="30 7 * * *")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r"/ui/schedules\?changed=saved$"))
    changed = stack.api.get(f"{stack.url}/schedules/{made['schedule_id']}", timeout=30).json()
    assert changed["cron"] == "30 7 * * *" and changed["predict"] == made["predict"]
    next_at = _next_runs(7, 30, "Europe/Paris", 1)[0].astimezone(UTC)
    assert _cell(row, "Next run") == next_at.strftime("%Y-%m-%d %H:%M:%S UTC")

    row.get_by_role("link", name="Edit schedule form-morning").click()
    page.get_by_role("button", name="Delete schedule").click()  # confirm() accepted
    page.wait_for_url(re.compile(r"/ui/schedules\?changed=deleted$"))
    assert row.count() == 0
    gone = stack.api.get(f"{stack.url}/schedules/{made['schedule_id']}", timeout=30)
    assert gone.status_code == 404
    assert page.errors == []


def _submitted_yesterday(stack, job_id: str) -> datetime:
    """Move a job back one day in the listing indexes, as if submitted then.
    (Reaches under the job engine on purpose: no API should be able to do this.)"""
    from mlsys.jobs import keys

    job = stack.api.get(f"{stack.url}/jobs/{job_id}", timeout=30).json()
    when = datetime.now(UTC) - timedelta(days=1)
    r = stack.jobs._redis
    for index in keys.all_indexes(job["principal"], job["kind"], job["state"]):
        r.zadd(index, {job_id: int(when.timestamp() * 1e6)})
    return when


def test_finding_yesterdays_failed_job_and_why_it_failed(page, stack):
    failed = _submit(stack, table="poisoned")
    wait_for(lambda: _state(stack, failed) == "failed", timeout=120, what="a failure")
    today = _submit(stack, table="poisoned")
    wait_for(lambda: _state(stack, today) == "failed", timeout=120, what="a failure")
    yesterday = _submitted_yesterday(stack, failed).date().isoformat()
    _sign_in(page, stack)
    filters = page.get_by_role("form", name="Filter jobs")
    filters.get_by_label("State").select_option("failed")
    filters.get_by_label("Model").fill("scripted")
    filters.get_by_label("From").fill(yesterday)
    filters.get_by_label("To").fill(yesterday)
    filters.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"from=" + yesterday))
    listed = page.locator("tr[data-job-id]")
    assert [listed.nth(i).get_attribute("data-job-id") for i in range(listed.count())] == [failed]
    assert _row(page, failed).locator(".reason").inner_text().startswith("The model raised")
    _row(page, failed).get_by_role("link").first.click()
    assert page.locator(".error-box .error-summary").inner_text().startswith("The model raised")

    page.goto(f"{stack.url}/ui/jobs?model=slow&state=failed")
    assert page.locator("tr[data-job-id]").count() == 0  # no failed job of that model

    page.goto(f"{stack.url}/ui/jobs")
    search = page.get_by_role("search", name="Find a job by id")
    search.get_by_label("Job id").fill(today[:8].upper())  # as copied from anywhere
    search.get_by_role("button", name="Find job").click()
    page.wait_for_url(re.compile(f"/ui/jobs/{today}$"))  # the only match: its page
    assert page.errors == []


def _save_compared(stack, version: int, features: list[str], accuracy: float, **extra) -> None:
    """A version of the model "compared" with metrics, a description and (maybe) a profile."""
    from mlsys.models.artifacts import save_model
    from mlsys.registry import sync_registry

    model = ScriptedClassifier().fit(pd.DataFrame(columns=FEATURES))
    bucket = stack.settings.bucket_for("dev")
    save_model(model, stack.store, bucket, "compared", version, features=features,
               target="Survived", id_columns=[datasets.ID_COLUMN],
               metrics={"accuracy": accuracy}, description=f"cut {version}", **extra)  # fmt: skip
    sync_registry(stack.warehouse, stack.store, stack.settings, "dev")


def test_a_version_page_traces_what_used_it_and_two_versions_compare(page, stack, tmp_path):
    _save_compared(stack, 1, ["Sex", "Pclass", "Fare"], 0.8)
    training = datasets.titanic(500)
    _save_compared(stack, 2, FEATURES, 0.85, training_data=training[FEATURES])
    job_id = _submit(stack, model="compared", model_version="v2")
    wait_for(lambda: _state(stack, job_id) == "succeeded", timeout=120, what="the job")
    schedule = {"name": "compared-nightly", "cron": "0 2 * * *", "timezone": "UTC"}
    schedule["predict"] = {
        "env": "dev",
        "input_table": str(INPUT.with_table("passengers")),
        "output_table": str(OUTPUT.with_table("compared_nightly")),
        "model_name": "compared",
    }  # latest: v2
    created = stack.api.post(f"{stack.url}/schedules", json=schedule, timeout=30)
    assert created.status_code == 201, created.text

    _sign_in(page, stack, then="/ui/models")
    page.locator('section:has(h2:text-is("compared"))').get_by_role("link", name="v2").click()
    page.wait_for_url(re.compile(r"/ui/models/compared/versions/v2\?env=dev$"))
    assert page.locator("#metrics tbody").inner_text().split() == ["accuracy", "0.85"]
    lineage = page.locator("#lineage").inner_text()
    assert "cut 2" in lineage and "scikit-learn" in lineage
    assert "500 rows profiled: Pclass, Sex" in lineage
    # Saved by this test process: the script (pytest's entry point) is its lineage.
    assert page.locator("#trained-in").inner_text().startswith("script ")
    assert job_id[:8] in page.locator("#version-jobs").inner_text()
    assert "compared-nightly" in page.locator("#version-schedules").inner_text()
    chart = page.locator("#drift-chart")
    # One bar per monitored column: the features and the model's own outputs.
    named = [*FEATURES, "prediction (output)", "probability (output)"]
    assert chart.locator("rect").count() == len(named)
    assert all(name in chart.locator("figcaption").inner_text() for name in named)
    assert page.locator("#evaluations").is_visible()  # the section later work fills
    assert page.evaluate(_AUDIT) == []
    _shot(page, "dashboard-model-version.png", tmp_path)

    compare = page.get_by_role("form", name="Compare with another version")
    compare.get_by_label("Compare with").select_option("v1")
    compare.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r"/ui/models/compared/compare\?"))
    rows = page.locator("#compare-metrics tbody tr").all_inner_texts()
    assert [r.split() for r in rows] == [["accuracy", "0.85", "0.8", "-0.05"]]
    features = page.locator("#compare-features").inner_text()
    assert "Only v1\nFare" in features and "Only v2\n-" in features
    assert "Sex" in page.locator("#compare-drift").inner_text()
    assert page.evaluate(_AUDIT) == []
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/ui/models/compared/versions/v2?env=dev", page.url.split(stack.url)[1]):
        page.goto(stack.url + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (path, overflow)
    missing = page.goto(f"{stack.url}/ui/models/compared/versions/v9?env=dev")
    assert (
        missing.status == 404 and "No version 'v9' of compared" in page.locator("main").inner_text()
    )
    assert len(page.errors) == 1  # Chromium logs the 404 page it loaded; nothing else
    stack.api.delete(f"{stack.url}/schedules/{created.json()['schedule_id']}")


# Every visible form control has a label (and no placeholder), every text meets WCAG AA
# contrast (4.5:1) against the background it is drawn on: readable by a screen reader and on a
# washed-out projector.
_AUDIT = """() => {
  const problems = [];
  const visible = e => e.offsetParent !== null || e.getClientRects().length > 0;
  for (const control of document.querySelectorAll("input:not([type=hidden]), select, button")) {
    if (!visible(control)) continue;
    const named = control.labels && control.labels.length > 0 || control.getAttribute("aria-label")
      || control.getAttribute("aria-labelledby") || control.textContent.trim();
    if (!named) problems.push("unlabelled " + control.outerHTML.slice(0, 80));
  }
  const rgb = text => (text.match(/[0-9.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = c => (c /= 255) <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = e => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const e = node.parentElement;
    if (!node.textContent.trim() || !visible(e)) continue;
    if (e.closest(".visually-hidden, .skip-link, option")) continue;
    const a = lum(rgb(getComputedStyle(e).color).slice(0, 3)), b = lum(background(e));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const text = node.textContent.trim().slice(0, 40);
    if (ratio < 4.5) problems.push(ratio.toFixed(2) + " on '" + text + "'");
  }
  // Grey example text inside a field reads as a value already there: hints go beside fields.
  for (const field of document.querySelectorAll("[placeholder]")) {
    problems.push("placeholder in " + field.outerHTML.slice(0, 80));
  }
  if (!document.documentElement.lang) problems.push("no lang");
  return problems;
}"""


def test_every_page_has_labels_and_readable_contrast(page, stack):
    _sign_in(page, stack)
    job_id = _submit(stack, table="poisoned")
    wait_for(lambda: _state(stack, job_id) == "failed", timeout=120, what="a failure")
    pages = ("/ui/jobs", f"/ui/jobs/{job_id}", "/ui/models", "/ui/schedules", "/ui/predict")
    for path in (*pages, "/ui/schedules/new"):
        page.goto(stack.url + path)
        assert page.evaluate(_AUDIT) == [], path
    page.context.clear_cookies()
    page.goto(f"{stack.url}/ui/signin")
    assert page.evaluate(_AUDIT) == []
