"""Error mapping: every failure leaves as problem+json, internals never leak."""

from __future__ import annotations

import logging

import pytest

from mlsys.errors import SchemaMismatch
from mlsys.settings import Settings
from web import create_app

pytestmark = pytest.mark.unit


@pytest.fixture
def app(tmp_path):
    """An app with auth off and two extra routes that fail; no backend is touched."""
    app = create_app({"SETTINGS": Settings(_env_file=None, MLSYS_HOME=str(tmp_path))})

    def boom():
        raise RuntimeError("secret internal detail at /srv/db password=hunter2")

    def mismatch():
        raise SchemaMismatch("Input lacks column Fare.", hint="Add it.")

    app.add_url_rule("/boom", view_func=boom)
    app.add_url_rule("/mismatch", view_func=mismatch)
    return app


def test_unexpected_error_is_a_generic_500_and_logged(app, caplog):
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/boom")

    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "hunter2" not in response.get_data(as_text=True)
    assert response.json["detail"].startswith("An unexpected error occurred")
    assert "hunter2" in caplog.text and "Traceback" in caplog.text
    error_id = response.json["error_id"]
    assert len(error_id) == 16 and error_id in response.json["detail"]
    assert f"error {error_id}" in caplog.text  # the id finds the traceback in the log
    assert app.test_client().get("/boom").json["error_id"] != error_id


def test_mlsys_error_keeps_its_status_title_and_hint(app):
    response = app.test_client().get("/mismatch")

    assert response.status_code == 422
    assert response.json == {
        "type": "urn:mlsys:problem:schema-mismatch",
        "title": "Schema mismatch",
        "status": 422,
        "detail": "Input lacks column Fare. Add it.",
    }


def test_validation_errors_name_every_field(app):
    response = app.test_client().post("/predict", json={"env": 3, "shards": 0, "extra": True})

    assert response.status_code == 400
    fields = {error["field"]: error["message"] for error in response.json["errors"]}
    assert set(fields) == {"env", "shards", "extra", "input_table", "output_table", "model_name"}
    assert "string" in fields["env"] and "greater than or equal to 1" in fields["shards"]
    assert fields["input_table"].startswith("Required")
    assert "Unknown field" in fields["extra"]
    assert "3" not in response.json["detail"].replace("shards", "")  # input is never echoed


def test_not_json_says_to_send_json(app):
    response = app.test_client().post("/predict", data="env=dev", content_type="text/plain")

    assert response.status_code == 400
    assert "Content-Type: application/json" in response.json["detail"]
