"""Job output and the registry on BigQuery: staging, the landing primitives, MERGE.

The workflow half of `BigQueryWarehouse`, written against the table primitives of
`BigQueryTables` (load, create, copy, drop, run, ...), so it holds no Cloud SDK import and no
error mapping: those are `client.py`'s. The rules of a commit are `mlsys.predict.commit`'s.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlsys.errors import MlsysError, SchemaMismatch
from mlsys.ids import TableId, check_column
from mlsys.settings import Settings
from mlsys.warehouse import bq_sql
from mlsys.warehouse.base import (
    AppendGuard,
    JobScope,
    MergeResult,
    OutputLanding,
    StagedRows,
    columns_to_add,
)
from mlsys.warehouse.bigquery.client import BigQueryTables, TableExists
from mlsys.warehouse.bq_schema import (
    api_fields,
    arrow_schema,
    bq_fields,
    check_append,
    loadable_schema,
    null_counts,
    relaxed,
    to_loadable,
)

#: Suffix (after `stage_prefix`) of the table all of a job's staging tables are copied into
#: before they land.
COMBINED = "all"


def stage_prefix(scope: JobScope) -> str:
    """Table-name prefix of a job's staging tables ('-' is not allowed everywhere)."""
    return f"_mlsys_stage_{scope.job_id.replace('-', '_')}_"


def snapshot_name(scope: JobScope) -> str:
    """Table name of an incremental job's frozen input (its new keys' rows)."""
    return f"_mlsys_snapshot_{scope.job_id.replace('-', '_')}"


def _spec_of(meta: Any, target: TableId, columns: list[str]) -> bq_sql.TableSpec:
    """The partitioning, clustering and description of an existing table, to keep them."""
    partitioning = meta.time_partitioning
    field = partitioning.field if partitioning is not None else None
    if (
        partitioning is not None
        and (field is None or field not in columns)
        or (getattr(meta, "range_partitioning", None) is not None)
    ):
        raise SchemaMismatch(
            f"Output table {target} is partitioned "
            f"{'by ingestion time' if field is None else f'on {field!r}'}, which this job's "
            f"output ({columns}) cannot keep.",
            hint="Choose another output table, or drop this one first.",
        )
    clustering = tuple(meta.clustering_fields or ())
    lost = [c for c in clustering if c not in columns]
    if lost:
        raise SchemaMismatch(
            f"Output table {target} is clustered by {lost}, which this job does not write.",
            hint="Choose another output table, or drop this one first.",
        )
    kinds = {f.name: f.field_type for f in meta.schema}
    return bq_sql.TableSpec(
        partition_field=field,
        partition_type=str(partitioning.type_) if partitioning is not None else "DAY",
        partition_kind=str(kinds.get(field, "TIMESTAMP")).upper(),
        clustering=clustering,
        description=meta.description,
    )


def _inserted(job: Any) -> int:
    stats = job.dml_stats
    if stats is not None and stats.inserted_row_count is not None:
        return int(stats.inserted_row_count)
    return int(job.num_dml_affected_rows or 0)


class Landing(OutputLanding):
    """A job's staging tables and its output table, landed by single statements, each atomic
    in BigQuery: CREATE TABLE ... AS SELECT for a new table, TRUNCATE + INSERT in one
    transaction (or CREATE OR REPLACE) for WRITE_TRUNCATE, and for appends an INSERT ... SELECT
    guarded by "no row of this JobId yet" or "table empty", so a repeated commit writes nothing.
    Metadata is read once per landing: one GET of the target, one per staging table."""

    def __init__(
        self,
        tables: BigQueryTables,
        target: TableId,
        sources: list[TableId],
        params: dict,
        combined: TableId | None = None,
    ) -> None:
        self.tables, self.target, self.sources = tables, target, sources
        #: Where the staging tables are copied into one before the landing statement reads
        #: them: BigQuery bills at least 10 MB per table a query references, so a job of many
        #: small shards would otherwise pay that minimum once per shard.
        self.combined = combined
        #: @job_id and @since of the landed check and the append guard.
        self.params = params
        self.what = f"Committing job {params['job_id']} into {target}"
        self._existing: Any = None
        self._fields: list[dict] = []

    def columns(self) -> list[str] | None:
        self._existing = self.tables.get_or_none(self.target)
        if self._existing is None:
            return None
        return [f.name for f in self._existing.schema]

    def _target_columns(self) -> list[str]:
        return [f.name for f in self._existing.schema]

    def landed(self) -> int:
        sql = bq_sql.rows_of_job(self.target, self._target_columns())
        return self.tables.scalar(sql, self.params)

    def row_count(self) -> int:
        return self.tables.rows(self._existing)

    def staged(self) -> StagedRows:
        # One GET per shard (not a listing): it also yields each staging table's schema and
        # row count.
        metas = [self.tables.get_or_none(source) for source in self.sources]
        missing = [i for i, meta in enumerate(metas) if meta is None]
        if missing or not metas:
            return StagedRows(columns=[], rows=0, missing=missing)
        self._fields = api_fields(metas[0])
        columns = [check_column(f["name"]) for f in self._fields]
        rows = sum(int(m.num_rows or 0) for m in metas)  # loaded by load jobs: exact
        # (bqemulator copies only the first of several sources: there the statement reads them.)
        if self.combined is not None and len(self.sources) > 1 and not self.tables.emulated:
            self.tables.copy(self.sources, self.combined)  # a copy job: no bytes billed
            self.tables.expire(self.combined)
            self.sources = [self.combined]
        return StagedRows(columns=columns, rows=rows)

    def _staged_columns(self) -> list[str]:
        return [f["name"] for f in self._fields]

    def create_from_staged(self) -> bool:
        self.tables.ensure_dataset(self.target.project, self.target.dataset)
        sql = bq_sql.create_from(self.target, self.sources, self._staged_columns(), False)
        try:
            self.tables.run(sql, what=self.what)
        except TableExists:
            return False
        return True

    def replace_with_staged(self) -> None:
        """Keep what the table is: with the same columns, TRUNCATE + INSERT in one transaction
        (partitioning, clustering, description, labels and policies stay); with other columns,
        CREATE OR REPLACE with the table's own partitioning, clustering and description
        (BigQuery refuses to change those there).

        Raises:
            SchemaMismatch: the table's partitioning cannot be kept (ingestion-time, or on a
                column the job does not write).
        """
        columns = self._staged_columns()
        have = api_fields(self._existing)
        same = {f["name"] for f in have} == set(columns)
        if same:
            try:
                check_append(have, arrow_schema(self._fields), self.target)
            except SchemaMismatch:
                same = False
        if same:
            sql = bq_sql.truncate_insert(self.target, self.sources, columns)
            self.tables.run(sql, what=self.what)
            return
        spec = _spec_of(self._existing, self.target, columns)
        sql = bq_sql.create_from(self.target, self.sources, columns, True, spec)
        self.tables.run(sql, what=self.what)

    def append_staged(self, guard: AppendGuard) -> int:
        check_append(api_fields(self._existing), arrow_schema(self._fields), self.target)
        sql = bq_sql.insert_from(
            self.target, self.sources, self._staged_columns(), guard, self._target_columns()
        )
        job = self.tables.run(sql, self.params if guard == "job" else None, what=self.what)
        return _inserted(job)


class StagedOutput:
    """A job's staging tables, their landing in an output table, discard, and MERGE."""

    def __init__(self, tables: BigQueryTables, settings: Settings) -> None:
        self.tables = tables
        self.settings = settings
        #: Largest local spool of a shard's output before it is loaded (MLSYS_SPOOL_BYTES).
        self.spool_bytes = settings.spool_bytes

    def _dataset_table(self, scope: JobScope, name: str) -> TableId:
        """A table of mlsys' own dataset for the job's environment."""
        return TableId(self.settings.gcp_project_id, self.settings.dataset_for(scope.env), name)

    def stage_table(self, scope: JobScope, shard_index: int) -> TableId:
        return self._dataset_table(scope, f"{stage_prefix(scope)}{shard_index}")

    def snapshot_table(self, scope: JobScope) -> TableId:
        return self._dataset_table(scope, snapshot_name(scope))

    def stage(
        self,
        scope: JobScope,
        shard_index: int,
        batches: Iterable[pa.RecordBatch],
        schema: pa.Schema,
    ) -> int:
        """Spool `batches` to local Parquet files of at most `spool_bytes` each and load them
        into the shard's staging table, which expires after `staging_ttl`.

        Memory stays bounded on Cloud Run, whose local disk is memory: one spool of at most
        `spool_bytes` (MLSYS_SPOOL_BYTES) per shard at a time. A shard that fits one spool is
        one load job into its staging table; a larger one appends its spools to a partial
        table, copied onto the staging table at the end (a copy job is atomic). Either way the
        staging table appears only once complete, which is what `staged_shards` reports.

        Returns:
            Rows staged.
        """
        table = self.stage_table(scope, shard_index)
        partial = table.with_table(f"{table.table}_partial")
        fields = bq_fields(schema)
        loadable = loadable_schema(schema)
        rows = spools = 0
        self.tables.ensure_dataset(table.project, table.dataset)
        spool = writer = None
        try:
            for batch in batches:
                if writer is None:
                    spool = tempfile.TemporaryFile(suffix=".parquet", dir=self._spool_dir())
                    writer = pq.ParquetWriter(spool, loadable)
                writer.write_table(to_loadable(batch, loadable))
                rows += batch.num_rows
                if spool.tell() >= self.spool_bytes:  # a full spool goes to the partial table
                    writer.close()
                    self._load_spool(spool, partial, fields, first=spools == 0)
                    spool.close()
                    spool = writer = None
                    spools += 1
            if writer is not None:
                writer.close()
                if spools == 0:  # the whole shard in one spool: straight to its staging
                    spool.seek(0)
                    self.tables.load(spool, table, fields, "WRITE_TRUNCATE")
                    self.tables.expire(table)
                    return rows
                self._load_spool(spool, partial, fields, first=False)
                spools += 1
        finally:
            if spool is not None:
                spool.close()
        if spools:
            self.tables.copy(partial, table)
            self.tables.expire(table)
            self.tables.drop(partial)
        else:
            self.tables.drop(table)
            self.tables.create(table, fields, exists_ok=True, expires=True)
        return rows

    def _load_spool(self, spool: Any, table: TableId, fields: list[dict], first: bool) -> None:
        spool.seek(0)
        self.tables.load(spool, table, fields, "WRITE_TRUNCATE" if first else "WRITE_APPEND")
        if first:
            self.tables.expire(table)

    def _spool_dir(self) -> str | None:
        """MLSYS_SPOOL_DIR when set (e.g. a disk-backed mount), else the system's temp dir."""
        return str(self.settings.spool_dir) if self.settings.spool_dir else None

    def _staged(self, scope: JobScope) -> dict[int, TableId]:
        prefix = stage_prefix(scope)
        found = {}
        for table in self._own_tables(scope):
            suffix = table.table.removeprefix(prefix)
            if table.table.startswith(prefix) and suffix.isdigit():
                found[int(suffix)] = table
        return found

    def _own_tables(self, scope: JobScope) -> list[TableId]:
        return self.tables.list(self.settings.gcp_project_id, self.settings.dataset_for(scope.env))

    def staged_shards(self, scope: JobScope) -> set[int]:
        """Shard indexes whose staging table exists (a load job creates it atomically)."""
        return set(self._staged(scope))

    def job_params(self, scope: JobScope) -> dict[str, Any]:
        """@job_id, and @since: no row of a job that can still commit is older than this. A
        shard's rows are timestamped while it runs (at most the task time limit), its staging
        expires `staging_ttl` after it landed, and a redelivered commit comes within the
        broker's visibility timeout (1.5 x the time limit): 3 x the time limit covers both."""
        window = self.tables.staging_ttl + dt.timedelta(seconds=3 * self.settings.task_time_limit)
        return {"job_id": scope.job_id, "since": dt.datetime.now(dt.UTC) - window}

    def landing(self, scope: JobScope, target: TableId, shard_count: int) -> Landing:
        sources = [self.stage_table(scope, i) for i in range(shard_count)]
        combined = self._dataset_table(scope, f"{stage_prefix(scope)}{COMBINED}")
        return Landing(self.tables, target, sources, self.job_params(scope), combined)

    def discard(self, scope: JobScope) -> None:
        """Drop the job's staging tables (partial ones too) and input snapshot (and nothing
        else)."""
        prefix = stage_prefix(scope)
        for table in self._own_tables(scope):
            suffix = table.table.removeprefix(prefix)
            ours = suffix.removesuffix("_partial").isdigit() or suffix == COMBINED
            if table.table.startswith(prefix) and ours:
                self.tables.drop(table)
        self.tables.drop(self.snapshot_table(scope))

    def _add_columns(self, table: TableId, existing: Any, fields: list[dict]) -> list[dict]:
        """Add `fields` at the end of `table` (as read: `existing`), one DDL statement each
        (IF NOT EXISTS: two first merges at once both succeed); the table's fields after.
        A column new to one of mlsys' own tables (`mlsys.tables`) reaches a table made before
        it here, where Terraform has not added it yet."""
        for field in fields:
            try:
                self.tables.run(
                    bq_sql.add_column(table, field),
                    what=f"Adding the column {field['name']!r} to {table}",
                )
            except MlsysError:
                # Two jobs' first writes at once: BigQuery may abort one of two changes of a
                # table's schema. Fine if the other one added the column.
                if field["name"] not in {f["name"] for f in api_fields(self.tables.get(table))}:
                    raise
        return [*api_fields(existing), *fields]

    def merge(self, table: TableId, rows: pa.Table, keys: list[str]) -> MergeResult:
        """Upsert `rows` by `keys` with one MERGE from a temporary table next to `table`, after
        adding the nullable columns of `rows` that `table` lacks.

        Raises:
            SchemaMismatch: a key is not a column, or `rows` has a REQUIRED column `table`
                lacks.
        """
        fields = bq_fields(rows.schema)
        columns = [f["name"] for f in fields]
        keys = [check_column(k) for k in keys]
        if not keys or set(keys) - set(columns):
            raise SchemaMismatch(f"Merge keys {keys} must be columns of the rows ({columns}).")
        self.tables.ensure_dataset(table.project, table.dataset)
        existing = self.tables.get_or_none(table)
        if existing is None:
            self.tables.create(table, fields, exists_ok=True)
        else:
            have = api_fields(existing)
            added = {f.name for f in columns_to_add(table, rows.schema, (f["name"] for f in have))}
            if added:
                have = self._add_columns(table, existing, [f for f in fields if f["name"] in added])
            fields = check_append(have, rows.schema, table, null_counts(rows))
            # The temporary source holds NULLABLE columns; the MERGE into `table` is where
            # BigQuery enforces its REQUIRED ones.
            fields = relaxed([f for f in fields if f["name"] in columns])
        if rows.num_rows == 0:
            return MergeResult(inserted=0, updated=0)
        source = table.with_table(f"_mlsys_merge_{table.table}_{uuid.uuid4().hex[:12]}")
        self.tables.create(source, fields, exists_ok=False, expires=True)
        try:
            data = to_loadable(rows, loadable_schema(arrow_schema(fields)))
            self.tables.write_arrow(data, source, fields, "WRITE_TRUNCATE")
            # bqemulator reports no DML statistics: count the new keys beforehand there.
            new = 0
            if self.tables.emulated:
                new = self.tables.scalar(bq_sql.count_new_keys(table, source, keys))
            sql = bq_sql.merge(table, source, columns, keys)
            job = self.tables.run(sql, what=f"Merging {table}")
        finally:
            self.tables.drop(source)
        stats = job.dml_stats
        if stats is not None:
            return MergeResult(
                int(stats.inserted_row_count or 0), int(stats.updated_row_count or 0)
            )
        return MergeResult(new, int(job.num_dml_affected_rows or 0) - new)
