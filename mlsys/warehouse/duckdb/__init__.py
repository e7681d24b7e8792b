"""The embedded warehouse (`duckdb:///path`): one DuckDB file shared by every process.

- `warehouse`: the `Warehouse` implementation (`DuckDBWarehouse`), its job output and landing;
- `sql`: BigQuery-dialect SQL turned into DuckDB's, and DuckDB identifiers;
- `file_queue`: turns at the file between processes (readers together, a writer alone).
"""

from mlsys.warehouse.duckdb.warehouse import DuckDBWarehouse

__all__ = ["DuckDBWarehouse"]
