"""A job's output landing on the embedded warehouse: its staged Parquet files and its output
table, inside one transaction (the rules of a commit are `mlsys.predict.commit`'s).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from mlsys.ids import TableId
from mlsys.warehouse.base import (
    JOB_ID_COLUMN,
    AppendGuard,
    JobScope,
    OutputLanding,
    StagedRows,
)
from mlsys.warehouse.duckdb.connection import execute, table_columns, table_exists
from mlsys.warehouse.duckdb.sql import (
    duckdb_table,
    quote_ident,
    sql_string,
)


class DuckDBLanding(OutputLanding):
    """A job's staged Parquet files and its output table, inside the landing's transaction.

    The transaction is the guard: nothing else writes the table between the landed check and
    the append, so `append_staged` inserts unconditionally."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        scope: JobScope,
        target: TableId,
        files: list[Path],
        memory_limit: str,
    ) -> None:
        self.con, self.scope, self.target, self.files = con, scope, target, files
        self.memory_limit = memory_limit
        self.name = duckdb_table(target)
        #: The table was created or replaced (not only appended to).
        self.replaced = False

    def columns(self) -> list[str] | None:
        if not table_exists(self.con, self.target):
            return None
        return table_columns(self.con, self.target)

    def landed(self) -> int:
        job_rows = f"FROM {self.name} WHERE {quote_ident(JOB_ID_COLUMN)} = ?"
        # Probe first: a job lands once, so the count is needed only in that rare case (the
        # probe stops at the first match instead of counting the whole table).
        if not execute(self.con, f"SELECT 1 {job_rows} LIMIT 1", [self.scope.job_id]):
            return 0
        return execute(self.con, f"SELECT count(*) {job_rows}", [self.scope.job_id])[0][0]

    def row_count(self) -> int:
        return execute(self.con, f"SELECT count(*) FROM {self.name}")[0][0]

    def staged(self) -> StagedRows:
        missing = [i for i, f in enumerate(self.files) if not f.exists()]
        if missing or not self.files:
            return StagedRows(columns=[], rows=0, missing=missing)
        # The rows are those staged: counted from the Parquet footers, not by reading the
        # table back.
        rows = sum(pq.read_metadata(f).num_rows for f in self.files)
        return StagedRows(columns=pq.read_schema(self.files[0]).names, rows=rows)

    def _source(self) -> str:
        # The write streams from Parquet; a cap keeps DuckDB from buffering the whole output in
        # memory (it spills instead). Measured on a 7-column output: a 512MB cap let the
        # commit grow by 117 MB at 1M rows and 276 MB at 10M, 128MB by 89 and 124 MB.
        execute(self.con, f"SET memory_limit = {sql_string(self.memory_limit)}")
        # An output table has no row order to keep (no query may rely on one): without it
        # DuckDB writes row groups on every thread at once, which halved a 5M-row commit.
        execute(self.con, "SET preserve_insertion_order = false")
        return f"read_parquet([{', '.join(sql_string(str(f)) for f in self.files)}])"

    def create_from_staged(self) -> bool:
        self.replace_with_staged()
        return True

    def replace_with_staged(self) -> None:
        self.replaced = True
        execute(self.con, f"CREATE OR REPLACE TABLE {self.name} AS SELECT * FROM {self._source()}")

    def append_staged(self, guard: AppendGuard) -> int:
        source = self._source()
        return execute(self.con, f"INSERT INTO {self.name} BY NAME SELECT * FROM {source}")[0][0]
