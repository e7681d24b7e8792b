"""Real responses of the job routes against /openapi.json: valid for their documented schema,
and every object has only documented fields and all required ones (an undocumented field is a
mismatch too).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from jsonschema import Draft202012Validator

from mlsys.jobs import JobStore
from tests.integration.trust_support import PASSENGERS, PROJECT, serve_api

pytestmark = pytest.mark.integration

TOKEN = "openapi-token-0123456789"


@pytest.fixture
def api(tmp_path, demo_home, redis_url, redis_client):
    with serve_api(tmp_path / "home", demo_home, redis_url, TOKEN, MLSYS_API_TOKENS=TOKEN) as api:
        api.spec = api.call("GET", "/openapi.json").json()
        yield api


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _exact_fields(spec: dict, schema: dict, value, where: str = "$") -> None:
    """Every object in `value` has only documented properties, and all the required ones."""
    schema = _resolve(spec, schema)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        matching = [o for o in options if _fits(spec, o, value)]
        assert matching, f"{where}: {value!r} fits none of {options}"
        _exact_fields(spec, matching[0], value, where)
    elif isinstance(value, dict) and "properties" in schema:
        documented, required = set(schema["properties"]), set(schema.get("required", ()))
        assert required <= set(value) <= documented, (where, set(value), documented, required)
        for name, item in value.items():
            _exact_fields(spec, schema["properties"][name], item, f"{where}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _exact_fields(spec, schema["items"], item, f"{where}[{i}]")


def _fits(spec: dict, schema: dict, value) -> bool:
    return Draft202012Validator({"components": spec["components"], **schema}).is_valid(value)


def _check(api, method: str, path: str, template: str, status: int, body) -> None:
    operation = api.spec["paths"][template][method.lower()]
    media = operation["responses"][str(status)]["content"]
    schema = (media.get("application/json") or media["application/problem+json"])["schema"]
    root = {"components": api.spec["components"], **schema}
    errors = [e.message for e in Draft202012Validator(root).iter_errors(body)]
    assert not errors, (method, path, errors)
    _exact_fields(api.spec, schema, body)


def _call(api, method: str, path: str, template: str, **kwargs):
    response = api.call(method, path, **kwargs)
    _check(api, method, path, template, response.status_code, response.json())
    return response.json()


def test_job_responses_match_the_document_in_every_state(api):
    body = {
        "env": "dev",
        "input_table": PASSENGERS,
        "output_table": f"{PROJECT}.scores.out",
        "model_name": "titanic-survival",
    }
    queued = _call(api, "POST", "/predict", "/predict", json=body)["job_id"]
    running = _call(api, "POST", "/predict", "/predict", json=body)["job_id"]
    done = _call(api, "POST", "/predict", "/predict", json=body)["job_id"]
    failed = _call(api, "POST", "/predict", "/predict", json=body)["job_id"]
    # Drive three of them as workers would, through the job engine.
    jobs = JobStore.from_settings(api.settings)
    for job_id in (running, done, failed):
        assert jobs.claim(job_id, "plan", 1, 60, "w1:4711").ok
        jobs.record_plan(job_id, [{"part": 0}, {"part": 1}], {}, 500)
        assert jobs.claim(job_id, "shard:0", 1, 60, "w1:4711").ok
        jobs.set_progress(job_id, 0, 120)
    jobs.succeed(done, {"rows_written": 500, "output_table": f"{PROJECT}.scores.out"})
    jobs.fail(failed, "shard:1: boom", error_type="ValueError")

    for job_id in (queued, running, done, failed):
        _call(api, "GET", f"/jobs/{job_id}", "/jobs/{job_id}")
    page = _call(api, "GET", "/jobs", "/jobs", params={"limit": 2})
    assert page["next_page_token"]
    _call(api, "GET", "/jobs", "/jobs", params={"page_token": page["next_page_token"]})
    cancelled = _call(api, "DELETE", f"/jobs/{queued}", "/jobs/{job_id}")
    assert cancelled["state"] == "cancelled"
    shown = _call(api, "GET", f"/jobs/{running}", "/jobs/{job_id}")
    started_at = shown["shards"][0]["started_at"]
    assert datetime.fromisoformat(started_at) <= datetime.now(UTC)
    assert shown["shards"][0] == {
        "index": 0,
        "state": "running",
        "attempt": 1,
        "worker": "w1:4711",
        "rows_done": 120,
        "started_at": started_at,
        "finished_at": None,
    }
    _call(api, "DELETE", f"/jobs/{done}", "/jobs/{job_id}")  # 409, a problem
    _call(api, "GET", "/jobs/0123456789abcdef", "/jobs/{job_id}")  # 404, a problem
