"""Job output and the registry on BigQuery: staging, the atomic commit, MERGE.

The workflow half of `BigQueryWarehouse`, written against its table primitives (`_load`,
`_create`, `_drop`, `_expire`, `_list`, `_table_or_none`, `_rows`, `_run`, `_scalar`), so it
holds no Cloud SDK import and no error mapping: those stay in `bigquery.py`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlsys.errors import InvalidRequest, SchemaMismatch, TableNotEmpty
from mlsys.ids import TableId, check_column
from mlsys.warehouse import bq_sql
from mlsys.warehouse.base import (
    JOB_ID_COLUMN,
    CommitResult,
    JobScope,
    MergeResult,
    WriteDisposition,
    check_disposition,
)
from mlsys.warehouse.bq_schema import (
    arrow_schema,
    bq_fields,
    check_append,
    loadable_schema,
    null_counts,
    relaxed,
    to_loadable,
)


class TableExists(InvalidRequest):
    """A CREATE TABLE met a table created meanwhile (BigQuery's 409 "duplicate")."""


def stage_prefix(scope: JobScope) -> str:
    """Table-name prefix of a job's staging tables ('-' is not allowed everywhere)."""
    return f"_mlsys_stage_{scope.job_id.replace('-', '_')}_"


def snapshot_name(scope: JobScope) -> str:
    """Table name of an incremental job's frozen input (its new keys' rows)."""
    return f"_mlsys_snapshot_{scope.job_id.replace('-', '_')}"


def _api(meta: Any) -> list[dict]:
    return [f.to_api_repr() for f in meta.schema]


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


class StagedOutput:
    """stage / staged_shards / commit / discard / merge of `BigQueryWarehouse`."""

    def _stage_table(self, scope: JobScope, shard_index: int) -> TableId:
        dataset = self.settings.dataset_for(scope.env)
        return TableId(self.settings.gcp_project_id, dataset, f"{stage_prefix(scope)}{shard_index}")

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
        table = self._stage_table(scope, shard_index)
        partial = table.with_table(f"{table.table}_partial")
        fields = bq_fields(schema)
        loadable = loadable_schema(schema)
        rows = spools = 0
        self._ensure_dataset(table.project, table.dataset)
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
                    self._load(spool, table, fields, "WRITE_TRUNCATE")
                    self._expire(table)
                    return rows
                self._load_spool(spool, partial, fields, first=False)
                spools += 1
        finally:
            if spool is not None:
                spool.close()
        if spools:
            self._copy(partial, table)
            self._expire(table)
            self._drop(partial)
        else:
            self._drop(table)
            self._create(table, fields, exists_ok=True, expires=True)
        return rows

    def _load_spool(self, spool: Any, table: TableId, fields: list[dict], first: bool) -> None:
        spool.seek(0)
        self._load(spool, table, fields, "WRITE_TRUNCATE" if first else "WRITE_APPEND")
        if first:
            self._expire(table)

    def _spool_dir(self) -> str | None:
        """MLSYS_SPOOL_DIR when set (e.g. a disk-backed mount), else the system's temp dir."""
        return str(self.settings.spool_dir) if self.settings.spool_dir else None

    def _staged(self, scope: JobScope) -> dict[int, TableId]:
        dataset = self.settings.dataset_for(scope.env)
        prefix = stage_prefix(scope)
        found = {}
        for table in self._list(self.settings.gcp_project_id, dataset):
            suffix = table.table.removeprefix(prefix)
            if table.table.startswith(prefix) and suffix.isdigit():
                found[int(suffix)] = table
        return found

    def staged_shards(self, scope: JobScope) -> set[int]:
        """Shard indexes whose staging table exists (a load job creates it atomically)."""
        return set(self._staged(scope))

    def _job_params(self, scope: JobScope) -> dict[str, Any]:
        """@job_id, and @since: no row of a job that can still commit is older than this. A
        shard's rows are timestamped while it runs (at most the task time limit), its staging
        expires `staging_ttl` after it landed, and a redelivered commit comes within the
        broker's visibility timeout (1.5 x the time limit): 3 x the time limit covers both."""
        window = self.staging_ttl + dt.timedelta(seconds=3 * self.settings.task_time_limit)
        return {"job_id": scope.job_id, "since": dt.datetime.now(dt.UTC) - window}

    def _landed(self, target: TableId, scope: JobScope, columns: list[str]) -> int:
        sql = bq_sql.rows_of_job(target, columns)
        return self._scalar(sql, self._job_params(scope))

    def commit(
        self,
        scope: JobScope,
        target: TableId,
        shard_count: int,
        disposition: WriteDisposition,
    ) -> CommitResult:
        """Land all staged shards in `target` with one statement (atomic in BigQuery):
        CREATE TABLE ... AS SELECT for a new target, CREATE OR REPLACE for WRITE_TRUNCATE, else
        an INSERT ... SELECT guarded by "no row of this JobId yet" (WRITE_APPEND) or "target
        empty" (WRITE_EMPTY). A job that already landed is not written again.

        Raises:
            InvalidRequest: a shard's staging is missing.
            TableNotEmpty: WRITE_EMPTY and the target has rows.
            SchemaMismatch: the target was not written by mlsys (no JobId) and the disposition
                is not WRITE_TRUNCATE, or staged columns the target does not have.
        """
        disposition = check_disposition(disposition)
        existing = self._table_or_none(target)
        names = [f.name for f in existing.schema] if existing is not None else []
        if existing is not None and JOB_ID_COLUMN not in names:
            if disposition != "WRITE_TRUNCATE":
                raise SchemaMismatch(
                    f"Output table {target} exists but has no {JOB_ID_COLUMN} column, "
                    "so it was not written by mlsys.",
                    hint="Choose a new output table, or WRITE_TRUNCATE to replace it.",
                )
        elif existing is not None and (landed := self._landed(target, scope, names)):
            return CommitResult(rows=landed, already_committed=True)
        # One GET per shard (not a listing): it also yields each staging table's schema and
        # row count.
        sources = [self._stage_table(scope, i) for i in range(shard_count)]
        metas = [self._table_or_none(source) for source in sources]
        missing = [i for i, meta in enumerate(metas) if meta is None]
        if missing:
            raise InvalidRequest(
                f"Job {scope.job_id} has no staged output for shards {missing}; cannot commit."
            )
        fields = _api(metas[0]) if metas else []
        columns = [check_column(f["name"]) for f in fields]
        if JOB_ID_COLUMN not in columns:
            raise SchemaMismatch(f"Staged output of job {scope.job_id} has no {JOB_ID_COLUMN}.")
        rows = sum(int(m.num_rows or 0) for m in metas)  # loaded by load jobs: exact
        what = f"Committing job {scope.job_id} into {target}"
        if existing is None:
            self._ensure_dataset(target.project, target.dataset)
            try:
                self._run(bq_sql.create_from(target, sources, columns, False), what=what)
            except TableExists:
                # Another writer created the target since we looked: append to it instead.
                return self.commit(scope, target, shard_count, disposition)
            return CommitResult(rows=rows)
        if disposition == "WRITE_TRUNCATE":
            self._truncate(existing, target, sources, columns, fields, what)
            return CommitResult(rows=rows)
        check_append(_api(existing), arrow_schema(fields), target)
        if disposition == "WRITE_EMPTY" and self._rows(existing) > 0:
            raise TableNotEmpty(
                f"Output table {target} already has rows (WRITE_EMPTY).",
                hint="Use WRITE_APPEND or WRITE_TRUNCATE, or another table.",
            )
        guard = "empty" if disposition == "WRITE_EMPTY" else "job"
        params = self._job_params(scope) if guard == "job" else None
        sql = bq_sql.insert_from(target, sources, columns, guard, names)
        job = self._run(sql, params, what=what)
        if rows and not _inserted(job):
            # The guard held: another attempt landed this job meanwhile, or (WRITE_EMPTY)
            # someone else wrote first.
            if landed := self._landed(target, scope, names):
                return CommitResult(rows=landed, already_committed=True)
            raise TableNotEmpty(f"Output table {target} already has rows (WRITE_EMPTY).")
        return CommitResult(rows=rows)

    def _truncate(self, existing, target, sources, columns, fields, what) -> None:
        """WRITE_TRUNCATE of an existing table, keeping what it is: with the same columns,
        DELETE + INSERT in one transaction (partitioning, clustering, description, labels and
        policies stay); with other columns, CREATE OR REPLACE with the table's own
        partitioning, clustering and description (BigQuery refuses to change those there).

        Raises:
            SchemaMismatch: the table's partitioning cannot be kept (ingestion-time, or on a
                column the job does not write).
        """
        have = _api(existing)
        same = {f["name"] for f in have} == set(columns)
        if same:
            try:
                check_append(have, arrow_schema(fields), target)
            except SchemaMismatch:
                same = False
        if same:
            self._run(bq_sql.truncate_insert(target, sources, columns), what=what)
            return
        spec = _spec_of(existing, target, columns)
        self._run(bq_sql.create_from(target, sources, columns, True, spec), what=what)

    def discard(self, scope: JobScope) -> None:
        """Drop the job's staging tables (partial ones too) and input snapshot (and nothing
        else)."""
        prefix = stage_prefix(scope)
        dataset = self.settings.dataset_for(scope.env)
        for table in self._list(self.settings.gcp_project_id, dataset):
            suffix = table.table.removeprefix(prefix)
            if table.table.startswith(prefix) and suffix.removesuffix("_partial").isdigit():
                self._drop(table)
        dataset = self.settings.dataset_for(scope.env)
        self._drop(TableId(self.settings.gcp_project_id, dataset, snapshot_name(scope)))

    def merge(self, table: TableId, rows: pa.Table, keys: list[str]) -> MergeResult:
        """Upsert `rows` by `keys` with one MERGE from a temporary table next to `table`.

        Raises:
            SchemaMismatch: a key is not a column, or `rows` has columns `table` lacks.
        """
        fields = bq_fields(rows.schema)
        columns = [f["name"] for f in fields]
        keys = [check_column(k) for k in keys]
        if not keys or set(keys) - set(columns):
            raise SchemaMismatch(f"Merge keys {keys} must be columns of the rows ({columns}).")
        self._ensure_dataset(table.project, table.dataset)
        existing = self._table_or_none(table)
        if existing is None:
            self._create(table, fields, exists_ok=True)
        else:
            fields = check_append(_api(existing), rows.schema, table, null_counts(rows))
            # The temporary source holds NULLABLE columns; the MERGE into `table` is where
            # BigQuery enforces its REQUIRED ones.
            fields = relaxed([f for f in fields if f["name"] in columns])
        if rows.num_rows == 0:
            return MergeResult(inserted=0, updated=0)
        source = table.with_table(f"_mlsys_merge_{table.table}_{uuid.uuid4().hex[:12]}")
        self._create(source, fields, exists_ok=False, expires=True)
        try:
            data = to_loadable(rows, loadable_schema(arrow_schema(fields)))
            self._write_arrow(data, source, fields, "WRITE_TRUNCATE")
            # bqemulator reports no DML statistics: count the new keys beforehand there.
            new = self._scalar(bq_sql.count_new_keys(table, source, keys)) if self.emulated else 0
            job = self._run(bq_sql.merge(table, source, columns, keys), what=f"Merging {table}")
        finally:
            self._drop(source)
        stats = job.dml_stats
        if stats is not None:
            return MergeResult(
                int(stats.inserted_row_count or 0), int(stats.updated_row_count or 0)
            )
        return MergeResult(new, int(job.num_dml_affected_rows or 0) - new)
