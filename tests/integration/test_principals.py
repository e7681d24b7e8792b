"""Tokens act as named principals, and a principal does only what its scopes allow (#11 §2).

Attack: every token was all-powerful; a token meant for scoring could replace tables, sync the
registry and move the champion alias. Over HTTP, against the real app and Redis.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mlsys.cli import main
from tests.integration.trust_support import (
    PASSENGERS,
    PROJECT,
    assert_problem,
    bearer,
    serve_api,
)
from web.credentials import token_hash

pytestmark = pytest.mark.integration

ADMIN = "plain-admin-token-0123"
SCORER = "scorer-token-abcdef"
SCORER_NEXT = "scorer-token-rotated"
OPS = "ops-token-ghijkl"
PRINCIPALS = [
    {
        "name": "scorer",
        "token_sha256": [token_hash(SCORER), token_hash(SCORER_NEXT)],
        "scopes": ["predict"],
        "input_datasets": [f"{PROJECT}.titanic"],
        "output_datasets": [f"{PROJECT}.scores_*", f"{PROJECT}.titanic"],
    },
    {"name": "ops", "token_sha256": [token_hash(OPS)], "scopes": ["registry", "truncate"]},
]


@pytest.fixture
def api(tmp_path, demo_home, redis_url, redis_client):
    with serve_api(
        tmp_path / "home",
        demo_home,
        redis_url,
        MLSYS_API_TOKENS=ADMIN,
        MLSYS_API_PRINCIPALS=json.dumps(PRINCIPALS),
    ) as api:
        yield api


def _body(**overrides) -> dict:
    return {
        "env": "dev",
        "input_table": PASSENGERS,
        "output_table": f"{PROJECT}.scores_daily.out",
        "model_name": "titanic-survival",
        "model_version": "v1",
        "id_columns": ["PassengerId"],
        **overrides,
    }


def test_a_predict_principal_submits_with_either_of_its_tokens(api):
    for token in (SCORER, SCORER_NEXT):
        response = api.call("POST", "/predict", json=_body(), headers=bearer(token))
        assert response.status_code == 202, response.text
    assert len(api.queued()) == 2


def test_write_truncate_needs_the_truncate_scope(api):
    response = api.call(
        "POST", "/predict", json=_body(write_disposition="WRITE_TRUNCATE"), headers=bearer(SCORER)
    )

    assert_problem(response, 403, "'truncate' scope")
    assert api.queued() == [] and api.job_records() == []


def test_datasets_outside_a_principals_globs_are_refused(api):
    for body, phrase in (
        (_body(output_table=f"{PROJECT}.finance.out"), "as output_table"),
        (_body(input_table=f"{PROJECT}.scores_daily.in"), "as input_table"),
    ):
        assert_problem(api.call("POST", "/predict", json=body, headers=bearer(SCORER)), 403, phrase)
    assert api.queued() == [] and api.job_records() == []


def test_registry_routes_need_the_registry_scope(api):
    calls = [
        ("POST", "/model-registry", {"json": {"env": "dev"}}),
        (
            "PUT",
            "/models/titanic-survival/aliases/champion",
            {"json": {"env": "dev", "version": "v1"}},
        ),
    ]
    for method, path, kwargs in calls:
        assert_problem(api.call(method, path, headers=bearer(SCORER), **kwargs), 403, "'registry'")
    assert api.queued() == [] and api.job_records() == []
    assert all(not row["aliases"] or row["aliases"] == "[]" for row in api.registry_rows())

    api.settings.alias_wait_seconds = 0  # no worker here: the move stays a queued job
    synced = api.call("POST", "/model-registry", json={"env": "dev"}, headers=bearer(OPS))
    moved = api.call("PUT", calls[1][1], headers=bearer(OPS), **calls[1][2])
    assert synced.status_code == 202 and moved.status_code == 202, (synced.text, moved.text)
    assert len(api.job_records()) == 2  # the sync and the alias move, both queued


def test_predict_needs_the_predict_scope(api):
    response = api.call("POST", "/predict", json=_body(), headers=bearer(OPS))

    assert_problem(response, 403, "'predict' scope")
    assert api.queued() == []


def test_plain_tokens_keep_working_as_admin(api):
    headers = bearer(ADMIN)
    truncate = _body(output_table=f"{PROJECT}.finance.out", write_disposition="WRITE_TRUNCATE")

    assert api.call("POST", "/predict", json=truncate, headers=headers).status_code == 202
    assert (
        api.call("POST", "/model-registry", json={"env": "dev"}, headers=headers).status_code == 202
    )


def test_token_new_prints_a_token_and_an_entry_that_accepts_it():
    result = CliRunner().invoke(main, ["token", "new", "--name", "nightly", "--scope", "predict"])

    assert result.exit_code == 0, result.output
    token = result.output.splitlines()[0].removeprefix("token: ")
    entry = json.loads(result.output.strip().splitlines()[-1])
    assert entry == {"name": "nightly", "token_sha256": [token_hash(token)], "scopes": ["predict"]}
    assert token not in result.output.strip().splitlines()[-1]
