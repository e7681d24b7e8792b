"""The OpenAPI document: built from the app's routes, every example valid for its schema."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from mlsys.settings import Settings
from web import create_app
from web.openapi import _without_null, build_spec, openapi_path

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    settings = Settings(_env_file=None, MLSYS_HOME=str(home), MLSYS_API_TOKENS="t")
    return build_spec(create_app({"SETTINGS": settings}))


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ("/jobs/<job_id>", "/jobs/{job_id}"),
        ("/docs/assets/<path:filename>", "/docs/assets/{filename}"),
        ("/models/<name>/aliases/<alias>", "/models/{name}/aliases/{alias}"),
        ("/health", "/health"),
    ],
)
def test_flask_rules_become_openapi_paths(rule, path):
    assert openapi_path(rule) == path


def test_optional_query_values_lose_their_null_branch():
    schema = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "default": None}

    assert _without_null(schema) == {"type": "integer", "minimum": 1, "default": None}


def _examples(spec):
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body and "example" in body:
                yield f"{method} {path} request", body["schema"], body["example"]
            for status, response in op["responses"].items():
                media = response.get("content", {}).get("application/json")
                if media and "example" in media:
                    yield f"{method} {path} {status}", media["schema"], media["example"]


def test_every_example_is_valid_for_its_schema(spec):
    checked = 0
    for where, schema, example in _examples(spec):
        root = {"components": spec["components"], **schema}
        errors = list(Draft202012Validator(root).iter_errors(example))
        assert not errors, (where, [e.message for e in errors])
        checked += 1
    assert checked >= 14


def test_config_bounds_reach_the_document(spec):
    predict = spec["components"]["schemas"]["PredictRequest"]["properties"]

    assert predict["env"]["enum"] == ["dev", "staging", "prod"]
    integer = next(o for o in predict["shards"]["anyOf"] if o.get("type") == "integer")
    assert integer["maximum"] == 64


def test_auth_off_documents_no_global_requirement(tmp_path):
    settings = Settings(_env_file=None, MLSYS_HOME=str(tmp_path))
    spec = build_spec(create_app({"SETTINGS": settings}))

    assert "security" not in spec
    assert "401" not in spec["paths"]["/jobs"]["get"]["responses"]
    assert "OFF" in spec["info"]["description"]
