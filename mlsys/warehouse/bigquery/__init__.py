"""The BigQuery warehouse (`bigquery://PROJECT`): the only place the BigQuery SDK is imported.

Importing this package without the `gcp` extra raises `MissingExtra` saying how to install it.
- `warehouse`: the clients, the table primitives mapped to `mlsys.errors` (`BigQueryTables`)
  and the `Warehouse` implementation (`BigQueryWarehouse`);
- `landing`: a job's staged output and the landing primitives the commit rules are written on;
- `retry`: which BigQuery errors are transient, and how calls are retried.
The SQL and the schemas it builds need no SDK: `mlsys.warehouse.bq_sql`, `bq_schema`.
"""

from mlsys.warehouse.bigquery.warehouse import BigQueryTables, BigQueryWarehouse

__all__ = ["BigQueryTables", "BigQueryWarehouse"]
