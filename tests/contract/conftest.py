"""Backends the contract suites run against.

Each entry of WAREHOUSES / STORES is a fixture name that yields a fresh, empty backend.
Backends that need an emulator skip themselves when it is not installed.
"""

from __future__ import annotations

import pytest

from mlsys.store.local import LocalModelStore
from mlsys.warehouse.duckdb import DuckDBWarehouse

# The Google Cloud backends run through their real client libraries against local emulators
# (fake-gcs-server; bqemulator, installed by tests/gcp/emulators/install).
from tests.gcp.emulators.servers import (  # noqa: F401 - fixtures
    bigquery_emulator,
    bigquery_warehouse,
    gcs_emulator,
    gcs_store,
)

# ... and, with `-m gcp`, against a real project (MLSYS_TEST_GCP_PROJECT + ADC; see tests/gcp).
from tests.gcp.real import real_bigquery_warehouse, real_gcs_store  # noqa: F401 - fixtures

WAREHOUSES = [
    "duckdb_warehouse",
    "bigquery_warehouse",
    pytest.param("real_bigquery_warehouse", marks=pytest.mark.gcp),
]
STORES = ["local_store", "gcs_store", pytest.param("real_gcs_store", marks=pytest.mark.gcp)]


@pytest.fixture
def duckdb_warehouse(settings):
    return DuckDBWarehouse(settings.home / "warehouse.duckdb", settings.staging_dir, "mlsys-local")


@pytest.fixture
def local_store(tmp_path):
    return LocalModelStore(tmp_path / "models")


@pytest.fixture(params=WAREHOUSES)
def warehouse(request):
    """Every warehouse implementation that can run here."""
    backend = request.getfixturevalue(request.param)
    yield backend
    backend.close()


@pytest.fixture(params=STORES)
def store(request):
    """Every model store implementation that can run here."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def bucket() -> str:
    return "mlsys-models-test"
