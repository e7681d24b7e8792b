"""The BigQuery warehouse (`bigquery://PROJECT`): the only place the BigQuery SDK is imported.

Importing this package without the `gcp` extra raises `MissingExtra` saying how to install it.
- `client`: the SDK's clients and the table and job primitives, each mapping what the SDK
  raises to `mlsys.errors` (`BigQueryTables`);
- `warehouse`: the `Warehouse` implementation (`BigQueryWarehouse`): reads, writes, sessions;
- `landing`: a job's staged output and the landing primitives the commit rules are written on;
- `retry`: which BigQuery errors are transient, and how calls are retried.
The SQL and the schemas it builds need no SDK: `mlsys.warehouse.bq_sql`, `bq_schema`.
"""

from mlsys.warehouse.bigquery.client import BigQueryTables
from mlsys.warehouse.bigquery.warehouse import BigQueryWarehouse

__all__ = ["BigQueryTables", "BigQueryWarehouse"]
