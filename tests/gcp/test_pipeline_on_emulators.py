"""The main job (demo: data, train, save, register, predict) on BigQuery + GCS emulators:
what works on the embedded default works the same on the Google Cloud backends."""

from __future__ import annotations

import pytest

from mlsys.demo import demo_tables, run_demo
from mlsys.registry import read_registry, sync_registry

pytestmark = pytest.mark.integration


def test_demo_runs_unchanged_on_google_cloud_backends(bigquery_warehouse, gcs_store):
    wh, settings = bigquery_warehouse, bigquery_warehouse.settings
    report = run_demo(wh, gcs_store, settings, rows=3000, say=lambda *_: None)

    assert report.model_saved and report.result.rows_written == 3000
    _, predictions = demo_tables(settings)
    assert wh.count_rows(predictions) == 3000
    assert {"PredictionProbability", "JobId", "ModelVersion"} <= set(wh.schema(predictions).names)

    # The registry is a MERGE: a re-sync with nothing new writes nothing.
    again = sync_registry(wh, gcs_store, settings, "dev")
    assert (again.inserted, again.updated) == (0, 0)
    [entry] = read_registry(wh, settings, "dev")
    assert (entry.model_name, entry.model_version) == ("titanic-survival", 1)
