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

WAREHOUSES = ["duckdb_warehouse", "bigquery_warehouse"]
STORES = ["local_store", "gcs_store"]


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
