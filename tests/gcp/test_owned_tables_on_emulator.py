"""mlsys' own tables as Terraform creates them (REQUIRED keys, clustering), then used by mlsys."""

from __future__ import annotations

import json

import pytest
from google.cloud import bigquery

from mlsys.artifacts import save_model
from mlsys.registry import read_registry, registry_table, sync_registry
from mlsys.tables import MODEL_REGISTRY, SCHEMA_DIR
from tests.models import ScriptedClassifier

pytestmark = pytest.mark.integration


def _create_as_terraform_does(wh, table) -> None:
    """`google_bigquery_table.model_registry`: the schema file, the clustering, the dataset."""
    fields = json.loads((SCHEMA_DIR / f"{MODEL_REGISTRY.name}.json").read_text())
    wh.tables.ensure_dataset(table.project, table.dataset)
    wh.client.delete_table(str(table), not_found_ok=True)
    meta = bigquery.Table(str(table), [bigquery.SchemaField.from_api_repr(f) for f in fields])
    meta.clustering_fields = list(MODEL_REGISTRY.clustering)
    wh.client.create_table(meta)


def test_sync_fills_the_registry_table_terraform_creates(bigquery_warehouse, gcs_store):
    wh, settings = bigquery_warehouse, bigquery_warehouse.settings
    table = registry_table(settings, "dev")
    _create_as_terraform_does(wh, table)
    modes = {f.name: f.mode for f in wh.client.get_table(str(table)).schema}
    assert modes["model_name"] == "REQUIRED"  # the emulator keeps what Terraform declared

    model = ScriptedClassifier().fit(None)
    save_model(model, gcs_store, settings.bucket_for("dev"), "titanic-survival", 1)
    first = sync_registry(wh, gcs_store, settings, "dev")
    again = sync_registry(wh, gcs_store, settings, "dev")

    assert (first.inserted, again.inserted, again.updated) == (1, 0, 0)
    [entry] = read_registry(wh, settings, "dev")
    assert (entry.model_name, entry.model_version, entry.status) == (
        "titanic-survival",
        1,
        "active",
    )
    # Still the table Terraform made: nothing replaced it.
    assert {f.name: f.mode for f in wh.client.get_table(str(table)).schema} == modes
