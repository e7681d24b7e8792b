"""Schedules as a door to work: budgets, caps, listings, restarts and revoked principals.

Attacks: one principal created 810 schedules in 55 s with no 429; another's schedule then
vanished from its own listing; right after a restart every /schedules route answered 500;
a principal removed from the configuration kept running its schedules. Over HTTP against the
real app and Redis; the firing test runs a real worker.
"""

from __future__ import annotations

import json

import pytest
import requests

from mlsys.schedules import Schedule, ScheduleStore, new_schedule_id
from tests.integration.jobs_support import INPUT, OUTPUT, make_stack
from tests.integration.trust_support import (
    PASSENGERS,
    PROJECT,
    assert_problem,
    bearer,
    serve_api,
)
from tests.services import celery_worker, serve_wsgi, wait_for
from web import create_app
from web.credentials import token_hash
from worker.app import QUEUE, create_celery
from worker.beat import RUN_SCHEDULE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ADMIN = "schedules-admin-token"
ALICE, BOB = "schedules-alice-token", "schedules-bob-token"
PRINCIPALS = [
    {"name": "alice", "token_sha256": [token_hash(ALICE)], "scopes": ["predict"]},
    {"name": "bob", "token_sha256": [token_hash(BOB)], "scopes": ["predict"]},
]
PREDICT = {
    "env": "dev",
    "input_table": PASSENGERS,
    "output_table": f"{PROJECT}.titanic.scored",
    "model_name": "titanic-survival",
    "model_version": "v1",
}


def _body(**overrides) -> dict:
    return {"interval_seconds": 3600, "paused": True, "predict": PREDICT, **overrides}


@pytest.fixture
def api(tmp_path, demo_home, redis_url, redis_client):
    with serve_api(
        tmp_path / "home",
        demo_home,
        redis_url,
        MLSYS_API_TOKENS=ADMIN,
        MLSYS_API_PRINCIPALS=json.dumps(PRINCIPALS),
        MLSYS_SUBMIT_RATE_LIMIT="5/minute",
        MLSYS_SCHEDULES_PER_PRINCIPAL="4",
    ) as api:
        yield api


def test_creating_and_resuming_schedules_spend_the_submit_budget(api):
    alice = bearer(ALICE)
    made = [api.call("POST", "/schedules", json=_body(), headers=alice) for _ in range(3)]
    assert [r.status_code for r in made] == [201, 201, 201]
    schedule_id = made[0].json()["schedule_id"]
    resumed = api.call("PATCH", f"/schedules/{schedule_id}", json={"paused": False}, headers=alice)
    assert resumed.status_code == 200, resumed.text
    api.call("POST", "/predict", json=PREDICT, headers=alice)  # the fifth submit of the minute

    over = api.call("POST", "/schedules", json=_body(), headers=alice)
    assert_problem(over, 429, "alice")
    assert int(over.headers["Retry-After"]) >= 1
    # Bob's budget is his own; a refused request (400) spends none of it.
    for _ in range(6):
        assert api.call("POST", "/schedules", json={}, headers=bearer(BOB)).status_code == 400
    assert api.call("POST", "/schedules", json=_body(), headers=bearer(BOB)).status_code == 201


def test_a_principal_has_at_most_the_capped_number_of_schedules(api):
    alice = bearer(ALICE)
    for _ in range(4):
        assert api.call("POST", "/schedules", json=_body(), headers=alice).status_code == 201

    assert_problem(api.call("POST", "/schedules", json=_body(), headers=alice), 409, "4")
    # The admin lists them all and may delete one; then there is room again.
    listed = api.call("GET", "/schedules", headers=bearer(ADMIN)).json()["schedules"]
    assert len(listed) == 4
    deleted = api.call("DELETE", f"/schedules/{listed[0]['schedule_id']}", headers=bearer(ADMIN))
    assert deleted.status_code == 200
    assert api.call("POST", "/schedules", json=_body(), headers=alice).status_code == 201


def test_other_principals_newer_schedules_never_hide_ones_own(api):
    store = ScheduleStore(api.redis)
    mine = store.create(Schedule(new_schedule_id(), "alice", {}, interval_seconds=3600))
    for _ in range(900):
        store.create(Schedule(new_schedule_id(), "bob", {}, interval_seconds=3600, paused=True))

    listed = api.call("GET", "/schedules", headers=bearer(ALICE)).json()["schedules"]

    assert [s["schedule_id"] for s in listed] == [mine.schedule_id]


def test_the_schedule_routes_answer_right_after_a_restart(api):
    created = api.call("POST", "/schedules", json=_body(paused=False), headers=bearer(ALICE))
    assert created.status_code == 201, created.text
    schedule_id = created.json()["schedule_id"]

    # A new process: a Celery app that has not yet saved or read any redbeat entry.
    celery = create_celery(api.settings)
    restarted = create_app({"SETTINGS": api.settings, "CELERY_APP": celery})
    try:
        with serve_wsgi(restarted) as url:
            admin = bearer(ADMIN)
            listed = requests.get(f"{url}/schedules", headers=admin, timeout=30)
            one = requests.get(f"{url}/schedules/{schedule_id}", headers=admin, timeout=30)
            gone = requests.delete(f"{url}/schedules/{schedule_id}", headers=admin, timeout=30)
    finally:
        celery.close()
    assert listed.status_code == 200, listed.text
    assert listed.json()["schedules"][0]["next_run_at"] is not None
    assert one.status_code == 200 and gone.status_code == 200, (one.text, gone.text)


def test_a_revoked_principals_schedule_is_suspended_at_fire_time(tmp_path, redis_client, redis_url):
    principals = tmp_path / "principals.json"
    principals.write_text(json.dumps(PRINCIPALS))
    stack = make_stack(
        tmp_path, redis_url, MLSYS_API_TOKENS=ADMIN, MLSYS_API_PRINCIPALS_FILE=str(principals)
    )
    stack.load_table(50)
    stack.register(version=1)
    predict = {**PREDICT, "input_table": str(INPUT), "output_table": str(OUTPUT)}
    predict["model_name"] = "scripted"
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    with serve_wsgi(app) as url, celery_worker(stack.env, stack.cwd):
        made = requests.post(
            f"{url}/schedules",
            json={"interval_seconds": 3600, "predict": predict},
            headers=bearer(ALICE),
            timeout=30,
        )
        assert made.status_code == 201, made.text
        schedule_id = made.json()["schedule_id"]
        # Alice leaves: her entry is removed from the principals file (no restart).
        principals.write_text(json.dumps(PRINCIPALS[1:]))
        stack.celery.send_task(RUN_SCHEDULE, args=[schedule_id], queue=QUEUE)

        def shown() -> dict:
            answer = requests.get(
                f"{url}/schedules/{schedule_id}", headers=bearer(ADMIN), timeout=30
            )
            return answer.json()

        wait_for(lambda: shown()["last_runs"], timeout=60, what="the firing")
        item = shown()
        assert [r["outcome"] for r in item["last_runs"]] == ["skipped_revoked"]
        assert "'alice' is no longer configured" in item["last_runs"][0]["detail"]
        assert item["paused"] and item["next_run_at"] is None
        assert "alice" in item["suspended"]
        assert stack.jobs.page().jobs == []  # no job ran as alice

        # Only an admin resumes it: this web process still knows Alice's token (it reads the
        # file at start), and her resume is refused all the same.
        refused = requests.patch(
            f"{url}/schedules/{schedule_id}",
            json={"paused": False},
            headers=bearer(ALICE),
            timeout=30,
        )
        assert_problem(refused, 403, "only an admin")
        resumed = requests.patch(
            f"{url}/schedules/{schedule_id}",
            json={"paused": False},
            headers=bearer(ADMIN),
            timeout=30,
        ).json()
        assert resumed["paused"] is False and resumed["suspended"] is None
        assert resumed["next_run_at"] is not None


def test_a_schedules_firings_spend_its_principals_budget(tmp_path, redis_client, redis_url):
    stack = make_stack(
        tmp_path,
        redis_url,
        MLSYS_API_TOKENS=ADMIN,
        MLSYS_API_PRINCIPALS=json.dumps(PRINCIPALS),
        MLSYS_SUBMIT_RATE_LIMIT="3/day",  # a window that does not roll over mid-test
    )
    stack.load_table(50)
    stack.register(version=1)
    predict = {**PREDICT, "input_table": str(INPUT), "output_table": str(OUTPUT)}
    predict["model_name"] = "scripted"
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    alice = bearer(ALICE)
    with serve_wsgi(app) as url, celery_worker(stack.env, stack.cwd):
        made = requests.post(  # the first of Alice's three submits today
            f"{url}/schedules",
            json={"interval_seconds": 3600, "predict": predict},
            headers=alice,
            timeout=30,
        )
        assert made.status_code == 201, made.text
        schedule_id = made.json()["schedule_id"]

        def runs() -> list[dict]:
            answer = requests.get(f"{url}/schedules/{schedule_id}", headers=alice, timeout=30)
            return answer.json()["last_runs"]

        stack.celery.send_task(RUN_SCHEDULE, args=[schedule_id], queue=QUEUE)  # the second
        (fired,) = wait_for(runs, timeout=60, what="the first firing")
        assert fired["outcome"] == "submitted", fired
        stack.wait(fired["job_id"])
        third = requests.post(f"{url}/predict", json=predict, headers=alice, timeout=30)
        assert third.status_code == 202, third.text
        assert_problem(requests.post(f"{url}/predict", json=predict, headers=alice), 429)

        stack.celery.send_task(RUN_SCHEDULE, args=[schedule_id], queue=QUEUE)
        wait_for(lambda: len(runs()) == 2, timeout=60, what="the second firing")
        skipped = runs()[0]
    assert skipped["outcome"] == "skipped_budget" and skipped["job_id"] is None
    assert "over its submit budget" in skipped["detail"]
    assert len(stack.jobs.page().jobs) == 2  # the firing's job and the API's, nothing more
