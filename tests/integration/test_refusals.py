"""Refusals cost nothing and never 500: a huge `Prefer: wait`, malformed job ids, and requests
refused with a 4xx before any work (attacks: `Prefer: wait=<5000 digits>` answered 500 after
the job was queued; `/jobs/{id}:units` answered 500 for an existing id; rejected 400s spent
the caller's submit budget). Over HTTP against the real app and Redis."""

from __future__ import annotations

import pytest

from tests.integration.trust_support import PASSENGERS, PROJECT, assert_problem, serve_api
from web.ui.guard import SESSION_COOKIE
from web.ui.sessions import SessionStore

pytestmark = pytest.mark.integration

TOKEN = "refusals-admin-token-0123"
BODY = {
    "env": "dev",
    "input_table": PASSENGERS,
    "output_table": f"{PROJECT}.titanic.scored",
    "model_name": "titanic-survival",
    "model_version": "v1",
    "id_columns": ["PassengerId"],
}


@pytest.fixture
def api(tmp_path, demo_home, redis_url, redis_client):
    with serve_api(
        tmp_path / "home",
        demo_home,
        redis_url,
        token=TOKEN,
        MLSYS_API_TOKENS=TOKEN,
        MLSYS_SUBMIT_RATE_LIMIT="3/minute",
    ) as api:
        yield api


@pytest.mark.parametrize("wait", ["9" * 5000, "0" * 4000 + "1", "\u00b2", "1e9", "-1"])
def test_any_prefer_wait_is_parsed_without_error(api, wait):
    response = api.call("POST", "/predict", json=BODY, headers={"Prefer": f"wait={wait}"})

    assert response.status_code == 202, response.text
    assert len(api.job_records()) == 1


def test_a_malformed_job_id_is_a_404_problem(api):
    job_id = api.call("POST", "/predict", json=BODY).json()["job_id"]
    for bad in (f"{job_id}:units", f"{job_id}:progress", "..", "x" * 65, "-x", "a b", "%00"):
        for method in ("GET", "DELETE"):
            assert_problem(api.call(method, f"/jobs/{bad}"), 404)
    cookie, _ = SessionStore.from_url(api.settings.redis_url).create(TOKEN)
    page = api.call("GET", f"/ui/jobs/{job_id}:units", cookies={SESSION_COOKIE: cookie})
    assert page.status_code == 404 and "No job" in page.text
    assert api.call("GET", f"/jobs/{job_id}").status_code == 200


def test_requests_refused_before_any_work_spend_no_budget(api):
    refused = [
        api.call("POST", "/predict", json={**BODY, "model_name": "Bad Name!"}),
        api.call("POST", "/predict", json={**BODY, "input_table": "nope"}),
        api.call("POST", "/predict", json={**BODY, "model_version": "v99"}),
        api.call("POST", "/predict", data="not json", headers={"Content-Type": "text/plain"}),
        api.call("POST", "/model-registry", json={"env": "nowhere"}),
    ]
    assert all(400 <= r.status_code < 500 for r in refused), [r.text for r in refused]

    accepted = [api.call("POST", "/predict", json=BODY).status_code for _ in range(3)]
    assert accepted == [202, 202, 202]
    assert_problem(api.call("POST", "/predict", json=BODY), 429)
