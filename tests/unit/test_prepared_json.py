"""A prepared predict job goes into its job record as JSON once and comes back typed."""

from __future__ import annotations

import pytest

from mlsys.errors import InvalidRequest, ProtectedTable, UnknownEnvironment
from mlsys.ids import ModelRef, TableId
from mlsys.pinned import PinnedModel
from mlsys.predict import PredictSpec, PreparedPredict
from mlsys.settings import Settings

pytestmark = pytest.mark.unit

SETTINGS = Settings(_env_file=None)
PROJECT = SETTINGS.gcp_project_id

#: A record's `prepared` field as the API has always written it (the wire format).
STORED = {
    "spec": {
        "env": "dev",
        "input_table": f"{PROJECT}.sales.orders",
        "output_table": f"{PROJECT}.sales.scored",
        "model_name": "churn",
        "model_version": "champion",
        "id_columns": ["order_id"],
        "write_disposition": "WRITE_APPEND",
        "shards": 4,
        "mode": "incremental",
        "key_columns": ["order_id"],
    },
    "model": {
        "model_name": "churn",
        "model_version": 3,
        "gcs_bucket": "models-dev",
        "blob_path": "churn/v3/model.skops",
        "sha256": "ab" * 32,
        "generation": 1700000000000001,
        "artifact_format": "skops",
        "library_versions": {"scikit-learn": "1.5.2"},
    },
    "features": ["amount", "country"],
    "id_columns": ["order_id"],
    "target": "churned",
    "task": "classification",
    "rows_total": 1200,
    "output_schema_b64": "",
    "reference_profile": None,
}


def test_a_stored_record_reads_back_typed():
    prepared = PreparedPredict.from_json(STORED, SETTINGS)

    assert prepared.spec.input_table == TableId(PROJECT, "sales", "orders")
    assert prepared.spec.model == ModelRef.parse("churn", "champion")
    assert prepared.spec.key_columns == ("order_id",)
    assert prepared.spec.shards == 4
    assert prepared.env == "dev"
    assert prepared.model == PinnedModel(
        "churn",
        3,
        "models-dev",
        "churn/v3/model.skops",
        "ab" * 32,
        1700000000000001,
        "skops",
        {"scikit-learn": "1.5.2"},
    )
    assert prepared.model.ref == "churn/v3"
    assert prepared.model.version == "v3"


def test_the_json_written_is_the_json_read():
    prepared = PreparedPredict.from_json(STORED, SETTINGS)

    assert prepared.to_json() == STORED
    assert PreparedPredict.from_json(prepared.to_json(), SETTINGS) == prepared


def test_a_full_run_keeps_the_spec_json_it_always_had():
    spec = {**STORED["spec"], "mode": "full", "key_columns": None}
    prepared = PreparedPredict.from_json({**STORED, "spec": spec}, SETTINGS)

    assert "mode" not in prepared.to_json()["spec"]  # idempotency keys compare this JSON
    assert prepared.spec.mode == "full"


def test_a_record_without_library_versions_still_reads():
    model = {k: v for k, v in STORED["model"].items() if k != "library_versions"}

    pinned = PreparedPredict.from_json({**STORED, "model": model}, SETTINGS).model

    assert pinned.library_versions == {}


@pytest.mark.parametrize(
    ("table", "error"),
    [
        (f"{PROJECT}.mlsys_dev.model_registry", ProtectedTable),
        (f"{PROJECT}.sales.orders", InvalidRequest),  # its own input
    ],
)
def test_a_record_edited_to_name_a_forbidden_output_is_refused(table, error):
    edited = {**STORED, "spec": {**STORED["spec"], "output_table": table}}

    with pytest.raises(error):
        PreparedPredict.from_json(edited, SETTINGS)


def test_a_spec_is_checked_again_when_read_back():
    with pytest.raises(UnknownEnvironment):
        PredictSpec.from_json({**STORED["spec"], "env": "nowhere"}, SETTINGS)
