"""The warehouse: the tables jobs read and write, behind one interface (`base.Warehouse`).

Opened by URL: `duckdb:///path` (embedded) or `bigquery://PROJECT`; pipeline code never
branches on the backend. The SQL both run is built by pure functions (`bq_sql`, in BigQuery's
dialect, which the embedded warehouse translates) from checked table ids.
"""

from __future__ import annotations

from mlsys.dispositions import WriteDisposition, check_disposition
from mlsys.settings import Settings, get_settings
from mlsys.urls import by_scheme
from mlsys.warehouse.base import (
    JOB_ID_COLUMN,
    CommitResult,
    JobScope,
    KeyExclusion,
    MergeResult,
    ReadPlan,
    Warehouse,
)

__all__ = [
    "JOB_ID_COLUMN",
    "CommitResult",
    "JobScope",
    "KeyExclusion",
    "MergeResult",
    "ReadPlan",
    "Warehouse",
    "WriteDisposition",
    "check_disposition",
    "open_warehouse",
]


def _open_duckdb(url: str, settings: Settings) -> Warehouse:
    from mlsys.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse.from_url(url, settings)


def _open_bigquery(url: str, settings: Settings) -> Warehouse:
    from mlsys.warehouse.bigquery import BigQueryWarehouse

    return BigQueryWarehouse.from_url(url, settings)


_BACKENDS = {"duckdb": _open_duckdb, "bigquery": _open_bigquery}


def open_warehouse(url: str | None = None, settings: Settings | None = None) -> Warehouse:
    """The warehouse at `url` (default: settings' MLSYS_WAREHOUSE)."""
    settings = settings or get_settings()
    url = url or settings.warehouse
    opener = by_scheme(url, _BACKENDS, "warehouse", "MLSYS_WAREHOUSE")
    return opener(url, settings)
