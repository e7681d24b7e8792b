"""Jobs belong to the principal that submitted them (#11 §2, §6), over real HTTP and Redis.

Attack: token B listed, read and cancelled token A's jobs, and took A's idempotency key first.
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

ADMIN = "admin-token-0123456789"
ALICE = "alice-token-abcdefgh"
BOB = "bob-token-ijklmnop"
PRINCIPALS = [
    {"name": "alice", "token_sha256": [token_hash(ALICE)], "scopes": ["predict"]},
    {"name": "bob", "token_sha256": [token_hash(BOB)], "scopes": ["predict"]},
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


def _submit(api, token: str, **extra) -> str:
    body = {
        "env": "dev",
        "input_table": PASSENGERS,
        "output_table": f"{PROJECT}.scores.out",
        "model_name": "titanic-survival",
        "model_version": "v1",
        **extra,
    }
    response = api.call("POST", "/predict", json=body, headers=bearer(token))
    assert response.status_code in (200, 202), response.text
    return response.json()["job_id"]


def _list(api, token: str, **params) -> dict:
    response = api.call("GET", "/jobs", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def test_another_principals_job_is_not_found_and_cannot_be_cancelled(api):
    job_id = _submit(api, ALICE)

    assert_problem(api.call("GET", f"/jobs/{job_id}", headers=bearer(BOB)), 404, "no job")
    assert_problem(api.call("DELETE", f"/jobs/{job_id}", headers=bearer(BOB)), 404, "no job")
    mine = api.call("GET", f"/jobs/{job_id}", headers=bearer(ALICE)).json()
    assert mine["state"] == "queued" and mine["principal"] == "alice"
    assert api.call("GET", f"/jobs/{job_id}", headers=bearer(ADMIN)).status_code == 200

    cancelled = api.call("DELETE", f"/jobs/{job_id}", headers=bearer(ALICE))
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"


def test_an_admin_may_cancel_anyones_job(api):
    job_id = _submit(api, BOB)

    cancelled = api.call("DELETE", f"/jobs/{job_id}", headers=bearer(ADMIN))

    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert api.call("GET", f"/jobs/{job_id}", headers=bearer(BOB)).json()["state"] == "cancelled"


def test_idempotency_keys_are_per_principal(api):
    alices = _submit(api, ALICE, idempotency_key="nightly-2024-06-10")
    bobs = _submit(api, BOB, idempotency_key="nightly-2024-06-10")
    again = api.call(
        "POST",
        "/predict",
        json={
            "env": "dev",
            "input_table": PASSENGERS,
            "output_table": f"{PROJECT}.scores.out",
            "model_name": "titanic-survival",
            "model_version": "v1",
        },
        headers={**bearer(ALICE), "Idempotency-Key": "nightly-2024-06-10"},
    )

    assert bobs != alices
    assert again.status_code == 200 and again.json()["job_id"] == alices
    assert len(api.queued()) == 2


def test_jobs_record_the_principal_name_and_never_the_token(api):
    job_id = _submit(api, ALICE)

    stored = []
    for key in api.redis.scan_iter("*"):
        kind = api.redis.type(key)
        value = {
            "hash": api.redis.hgetall,
            "string": api.redis.get,
            "list": lambda k: api.redis.lrange(k, 0, -1),
            "set": api.redis.smembers,
            "zset": lambda k: api.redis.zrange(k, 0, -1),
        }[kind](key)
        stored.append(f"{key} {value}")
    assert any(job_id in entry for entry in stored)
    assert not [entry for entry in stored if ALICE in entry]
    assert api.call("GET", f"/jobs/{job_id}", headers=bearer(ALICE)).json()["principal"] == "alice"


def test_listing_pages_through_the_callers_own_jobs(api):
    alices = [_submit(api, ALICE) for _ in range(5)]
    bobs = [_submit(api, BOB) for _ in range(2)]
    api.call("DELETE", f"/jobs/{alices[1]}", headers=bearer(ALICE))

    seen, cursor, pages = [], None, 0
    while True:
        page = _list(api, ALICE, limit=2, **({"page_token": cursor} if cursor else {}))
        assert len(page["jobs"]) <= 2
        seen += [j["job_id"] for j in page["jobs"]]
        pages += 1
        cursor = page["next_page_token"]
        if cursor is None:
            break
    assert seen == alices[::-1] and pages == 3
    assert [j["job_id"] for j in _list(api, BOB)["jobs"]] == bobs[::-1]
    everyone = [j["job_id"] for j in _list(api, ADMIN, limit=500)["jobs"]]
    assert everyone == [*bobs[::-1], *alices[::-1]]
    cancelled = _list(api, ALICE, state="cancelled")
    assert [j["job_id"] for j in cancelled["jobs"]] == [alices[1]]
    assert cancelled["next_page_token"] is None
    assert _list(api, BOB, state="cancelled")["jobs"] == []
    for bad in ("nope", "12.", "1.xyz"):
        response = api.call("GET", "/jobs", params={"page_token": bad}, headers=bearer(ALICE))
        assert_problem(response, 400, "page_token")
