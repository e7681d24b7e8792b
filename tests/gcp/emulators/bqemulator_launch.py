"""Start bqemulator with two changes that bring it closer to BigQuery.

Runs inside the emulator's own venv (see `install`). Arguments are those of `bqemulator`, e.g.
`start --rest-port 9050`.

- DuckDB's `spatial` extension is optional: bqemulator refuses to start when it cannot INSTALL
  it, which needs the network; mlsys does not use GEOGRAPHY, so loading it is best effort here.
- `ALTER TABLE ... ADD COLUMN` reaches the table's metadata. bqemulator adds the column to its
  storage only, so `tables.get` (and Google's analyzer, whose catalog the tests read from there)
  kept the old schema; in BigQuery the column is in the table's schema once the job is done.
"""

import re
import sys

from bqemulator.catalog import ddl_sync
from bqemulator.catalog.etag import generate_etag
from bqemulator.cli import main
from bqemulator.jobs import executor
from bqemulator.storage import engine

_ADD_COLUMN = re.compile(r"^\s*ALTER\s+TABLE\s+`?([\w.-]+)`?\s+ADD\s+COLUMN\b", re.IGNORECASE)


def _load_spatial_if_present(self) -> None:
    try:
        self._connection.execute("LOAD spatial")
    except Exception:  # noqa: BLE001 - offline: not cached, GEOGRAPHY stays unsupported
        pass


engine.DuckDBEngine._load_spatial = _load_spatial_if_present


def _sync_added_columns(bq_sql: str, project_id: str, ctx) -> None:
    """Append the columns an ALTER TABLE added in storage to the table's metadata (the fields
    already there are kept as they are: storage does not know their REQUIRED mode)."""
    match = _ADD_COLUMN.match(bq_sql)
    if match is None:
        return
    parts = match.group(1).split(".")
    if len(parts) == 2:
        parts = [project_id, *parts]
    if len(parts) != 3:
        return
    meta = ctx.catalog.get_table(*parts)
    if meta is None:
        return
    stored = ddl_sync._introspect_schema(*parts, ctx)
    known = {f.name for f in meta.schema_.fields}
    added = tuple(f for f in stored.fields if f.name not in known)
    if not added:
        return
    now = ctx.clock.now()
    schema = meta.schema_.model_copy(update={"fields": (*meta.schema_.fields, *added)})
    ctx.catalog.update_table(
        meta.model_copy(
            update={
                "schema_": schema,
                "last_modified_time": now,
                "etag": generate_etag(*parts, meta.table_type, str(now)),
            }
        )
    )


_sync_dropped_object = executor.sync_dropped_object


def _sync_dropped_object_and_added_columns(bq_sql: str, project_id: str, ctx) -> None:
    _sync_dropped_object(bq_sql, project_id, ctx)
    _sync_added_columns(bq_sql, project_id, ctx)


# The executor calls this after every single statement (see `_execute_statement`).
executor.sync_dropped_object = _sync_dropped_object_and_added_columns

if __name__ == "__main__":
    sys.exit(main())
