"""Fixtures for the contract suites against a real Google Cloud project (`-m gcp`).

Skipped unless MLSYS_TEST_GCP_PROJECT names a project and Application Default Credentials
are available. Nothing outside what the tests create is touched: tables go to a `contract`
dataset whose tables expire after a day, staging to `mlsys_dev` (expiring on its own), and
objects to a fresh bucket per test that is deleted afterwards.
"""

from __future__ import annotations

import os
import uuid

import pytest

PROJECT_ENV = "MLSYS_TEST_GCP_PROJECT"


_EMULATOR_VARS = (
    "BIGQUERY_EMULATOR_HOST",
    "BIGQUERY_STORAGE_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
)


def _project(monkeypatch) -> str:
    project = os.environ.get(PROJECT_ENV)
    if not project:
        pytest.skip(f"set {PROJECT_ENV} (and ADC) to run against a real Google Cloud project")
    google_auth = pytest.importorskip("google.auth")
    from google.auth import exceptions

    try:
        google_auth.default()
    except exceptions.DefaultCredentialsError:
        pytest.skip("no Application Default Credentials: gcloud auth application-default login")
    for name in _EMULATOR_VARS:
        monkeypatch.delenv(name, raising=False)
    return project


@pytest.fixture
def real_bigquery_warehouse(settings, monkeypatch):
    """A BigQueryWarehouse on the test project."""
    from google.cloud import bigquery

    from mlsys.settings import Settings
    from mlsys.warehouse.bigquery import BigQueryWarehouse

    project = _project(monkeypatch)
    settings = Settings(_env_file=None, MLSYS_HOME=str(settings.home), GCP_PROJECT_ID=project)
    warehouse = BigQueryWarehouse(project, settings)
    dataset = bigquery.Dataset(f"{project}.contract")
    dataset.default_table_expiration_ms = 24 * 3600 * 1000  # leftovers vanish on their own
    warehouse.client.create_dataset(dataset, exists_ok=True)
    yield warehouse
    warehouse.close()


@pytest.fixture
def real_gcs_store(bucket, monkeypatch):
    """A GCSModelStore on the test project, with the suite's bucket name mapped to a fresh
    bucket (bucket names are global, so the fixed test name cannot be used as is)."""
    from google.cloud import storage

    from mlsys.store.gcs import GCSModelStore

    project = _project(monkeypatch)
    client = storage.Client(project=project)
    real = client.create_bucket(f"mlsys-test-{uuid.uuid4().hex[:16]}", project=project)

    class _Mapped(GCSModelStore):
        def _b(self, name: str) -> str:
            return real.name if name == bucket else name

        def list_blobs(self, b, prefix=""):
            return super().list_blobs(self._b(b), prefix)

        def stat(self, b, path):
            return super().stat(self._b(b), path)

        def read(self, b, path, generation=None):
            return super().read(self._b(b), path, generation)

        def write(self, b, path, data, if_generation_match=None):
            return super().write(self._b(b), path, data, if_generation_match)

        def delete(self, b, path):
            return super().delete(self._b(b), path)

    yield _Mapped(client=client, project=project)
    real.delete(force=True)
