"""Each principal has a budget of job submissions (#11 §6).

Attack: nothing limited how fast one token could queue jobs, so one caller could flood the
workers for everyone. Budgets are per principal, shared by every submitting route, counted in
the job Redis, and answered with 429 + Retry-After.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.trust_support import (
    PASSENGERS,
    PROJECT,
    assert_problem,
    bearer,
    serve_api,
)
from web.credentials import token_hash

pytestmark = pytest.mark.integration

NOISY, QUIET = "noisy-token-0123456", "quiet-token-6543210"
PRINCIPALS = [
    {"name": "noisy", "token_sha256": [token_hash(NOISY)], "scopes": ["admin"]},
    {"name": "quiet", "token_sha256": [token_hash(QUIET)], "scopes": ["admin"]},
]
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
        MLSYS_API_PRINCIPALS=json.dumps(PRINCIPALS),
        MLSYS_SUBMIT_RATE_LIMIT="3/minute",
    ) as api:
        yield api


def test_submits_over_the_budget_are_429_with_retry_after(api):
    noisy = bearer(NOISY)
    accepted = [
        api.call("POST", "/predict", json=BODY, headers=noisy),
        api.call("POST", "/model-registry", json={"env": "dev"}, headers=noisy),
        api.call("GET", "/predict", params={**BODY, "id_columns": "PassengerId"}, headers=noisy),
    ]
    over = api.call("POST", "/predict", json=BODY, headers=noisy)

    assert [r.status_code for r in accepted] == [202, 202, 202]
    problem = assert_problem(over, 429, "'noisy'", "retry after")
    assert problem["type"].endswith("rate-limited")
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert len(api.queued()) == 3 and len(api.job_records()) == 3
    # Reading is not limited, and another principal has its own budget.
    assert api.call("GET", "/jobs", headers=noisy).status_code == 200
    assert api.call("POST", "/predict", json=BODY, headers=bearer(QUIET)).status_code == 202
