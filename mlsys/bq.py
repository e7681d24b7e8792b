"""The notebook helpers for tables, as the seed had them, over the configured warehouse.

`bq_get("SELECT ... FROM `project.dataset.table`")` runs BigQuery SQL on BigQuery or, unchanged,
on the embedded DuckDB warehouse.
"""

from __future__ import annotations

import pandas as pd

from mlsys.ids import TableId
from mlsys.settings import get_settings
from mlsys.warehouse import Warehouse, check_disposition, open_warehouse


def warehouse() -> Warehouse:
    """The warehouse MLSYS_WAREHOUSE names (embedded DuckDB by default)."""
    return open_warehouse(settings=get_settings())


def bq_get(query: str) -> pd.DataFrame:
    """Run a BigQuery SQL query and return the result as a DataFrame.

    Example: `bq_get("SELECT * FROM `my-project.titanic.passengers` LIMIT 10")`
    """
    return warehouse().query(query)


def bq_put(df: pd.DataFrame, table_id: str, write_disposition: str = "WRITE_APPEND") -> int:
    """Write a DataFrame to `project.dataset.table`; returns rows written.

    Args:
        write_disposition: WRITE_APPEND (default), WRITE_TRUNCATE or WRITE_EMPTY.
    """
    table = TableId.parse(table_id, default_project=get_settings().gcp_project_id)
    return warehouse().write(df, table, check_disposition(write_disposition))
