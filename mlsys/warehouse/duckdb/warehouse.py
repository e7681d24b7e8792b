"""The embedded warehouse: one DuckDB file, safe to share between processes.

DuckDB lets one process at a time open a file for writing (or any number for reading). The web
app, every worker and beat use the same file, so each operation opens a connection for one
short call, read-only where it only reads, and waits its turn on lock files beside it
(`mlsys.warehouse.duckdb.file_queue`): the API's checks share the file with each other and with the
workers' reads, and only writes (commits, merges) have it alone. A process that is not mlsys'
(the DuckDB CLI) may still hold the file: that open is retried with backoff.

Long work stays outside the file: a job's input is snapshotted once to Parquet (shards read the
snapshot, not the database), shards stage their output as Parquet files, and the commit is one
short INSERT ... SELECT in a transaction.

The `Warehouse` interface's implementation, method by method (longer than most modules
because the interface is that wide: reads, writes, a job's snapshot, shards and staging); a
connection's helpers are `connection.py`'s and the job output's landing `landing.py`'s.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tenacity import (
    RetryError,
)

from mlsys.errors import (
    BackendUnavailable,
    InvalidRequest,
    PermissionDenied,
    TableNotEmpty,
    TableNotFound,
)
from mlsys.ids import TableId
from mlsys.resources import duckdb_config
from mlsys.settings import Settings
from mlsys.warehouse.base import (
    JobScope,
    KeyExclusion,
    MergeResult,
    ReadPlan,
    Warehouse,
    WriteDisposition,
    check_disposition,
    columns_to_add,
)
from mlsys.warehouse.batches import rebatch
from mlsys.warehouse.duckdb.connection import (
    check_append_columns,
    dataset_columns,
    execute,
    one_query,
    retry_on_lock,
    sandbox,
    set_for,
    table_columns,
    table_exists,
    translate,
)
from mlsys.warehouse.duckdb.file_queue import FileQueue, FileTurnTimeout
from mlsys.warehouse.duckdb.landing import DuckDBLanding
from mlsys.warehouse.duckdb.read_cache import ReadCache, TableVersions
from mlsys.warehouse.duckdb.readers import AttachedReads
from mlsys.warehouse.duckdb.sql import (
    bigquery_to_duckdb,
    duckdb_schema_name,
    duckdb_select_new_keys,
    duckdb_table,
    quote_ident,
    sql_string,
)

log = logging.getLogger(__name__)

#: A read of one table's columns answers for every table of its dataset up to this many (the
#: read cache keeps MAX_ENTRIES answers in all).
GROUP_TABLES = 128

_SHARD_FILE = "shard-{:05d}.parquet"


class DuckDBWarehouse(Warehouse):
    """Warehouse on one DuckDB file; `project.dataset` maps to a schema of that name."""

    scheme = "duckdb"
    fork_safe = True  # a connection lives only for the statements of one call

    def __init__(
        self,
        path: Path,
        staging_dir: Path,
        default_project: str,
        config: dict[str, str | int] | None = None,
        lock_wait: float = 120.0,
        commit_memory: str = "128MB",
        snapshot_memory: str = "256MB",
    ) -> None:
        self.path = Path(path)
        #: How long an operation waits for another process to release the file.
        self.lock_wait = lock_wait
        #: DuckDB's memory cap while committing (it spills to disk beyond it).
        self.commit_memory = commit_memory
        #: DuckDB's memory cap while it copies a job's input to its snapshot.
        self.snapshot_memory = snapshot_memory
        #: Connection settings (memory_limit, threads); see mlsys.resources.duckdb_config.
        self.config = dict(config or {})
        self.staging_dir = Path(staging_dir)
        self.default_project = default_project
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._queue = FileQueue(self.path)
        self._reads = AttachedReads(self.path, self.config, self._allowed_directories())
        self._versions = TableVersions(self.path)
        self._cache: ReadCache | None = None

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> DuckDBWarehouse:
        path = url.removeprefix("duckdb://")
        # duckdb:///relative/file or duckdb:////absolute/file, as SQLAlchemy spells it.
        path = path[1:] if path.startswith("/") else path
        if not path or path == ":memory:":
            raise InvalidRequest(
                f"MLSYS_WAREHOUSE {url!r} names no file.",
                hint="Use duckdb:///path/to/warehouse.duckdb (several processes share it).",
            )
        return cls(
            Path(path),
            settings.staging_dir,
            settings.gcp_project_id,
            duckdb_config(settings),
            lock_wait=settings.duckdb_lock_wait,
            commit_memory=settings.duckdb_commit_memory,
            snapshot_memory=settings.duckdb_snapshot_memory,
        )

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({str(self.path)!r})"

    def cache_reads(self, max_age: float) -> None:
        """Answer existence, schema, row counts and whole-table reads again without opening
        the file while no mlsys write changed their tables (mlsys.warehouse.duckdb.read_cache),
        for at most `max_age` seconds. The API's checks use it; jobs read afresh."""
        self._cache = ReadCache(self._versions, max_age)

    def _cached(self, question: tuple, table: TableId, depends, read):
        if self._cache is None:
            return read()
        # A thread that holds a turn at the file reads for itself: waiting for another
        # thread's read of the same question could wait for a writer that waits for this turn.
        holding = getattr(self._local, "con", None) is not None
        return self._cache.get(question, table, depends, read, coalesce=not holding)

    def _changed(self, table: TableId, schema: bool) -> None:
        """Count a change of `table` for the read caches of every process (while writing)."""
        try:
            self._versions.bump(table, schema)
        except OSError as error:  # answers then stay until their age runs out
            log.warning("could not count a change of %s for read caches: %s", table, error)

    # --- connections --------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, write: bool = True) -> Iterator[None]:
        """Hold one connection for the calls inside (on this thread). Opening a DuckDB file
        costs tens of milliseconds; a request's handful of checks should pay it once. A
        read-only session (`write=False`) shares the file with other readers; where reads are
        cached it opens nothing until a read misses, and then keeps that turn at the file for
        the rest of the session: a request whose checks all miss waits behind the workers'
        commits once, not once for each check."""
        if getattr(self._local, "con", None) is not None or getattr(self._local, "lazy", None):
            yield
            return
        if not write and self._cache:
            with contextlib.ExitStack() as held:
                self._local.lazy = held
                try:
                    yield
                finally:
                    self._local.lazy = None
                    self._local.con = None
            return
        with self._open(write) as con:
            self._local.con, self._local.writes = con, write
            try:
                yield
            finally:
                self._local.con = None

    @contextlib.contextmanager
    def _connect(self, write: bool, attach: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        con = getattr(self._local, "con", None)
        if con is None and not write and attach and getattr(self._local, "lazy", None):
            # The first miss of a lazy read session: its turn lasts until the session ends.
            con = self._local.con = self._local.lazy.enter_context(self._open(False, True))
            self._local.writes = False
        if con is not None:
            if write and not self._local.writes:
                raise RuntimeError("a write inside a read-only warehouse session")
            yield con
            return
        with self._open(write, attach) as con:
            yield con

    @contextlib.contextmanager
    def _open(self, write: bool, attach: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """The file, for one call: shared with other readers unless `write`. A short read
        (`attach`) attaches it to this thread's kept in-memory DuckDB (mlsys.warehouse.duckdb.
        readers); anything else opens an instance of its own, with every thread of the
        connection settings."""
        started = time.monotonic()
        try:
            with self._queue.turn(write, self.lock_wait):
                left = max(0.1, self.lock_wait - (time.monotonic() - started))
                # A file that does not exist yet cannot be opened read-only: create it.
                read_only = not write and self.path.exists()
                if read_only and attach:
                    try:
                        with self._reads.attached(retry_on_lock(left)) as con:
                            yield con
                        return
                    except RetryError:
                        raise self._locked() from None
                try:
                    con = retry_on_lock(left)(duckdb.connect)(
                        str(self.path), read_only=read_only, config=self.config
                    )
                except RetryError:
                    raise self._locked() from None
                try:
                    sandbox(con, self._allowed_directories())
                    yield con
                finally:
                    con.close()
        except FileTurnTimeout:
            raise self._locked() from None

    def _locked(self) -> BackendUnavailable:
        return BackendUnavailable(
            f"The warehouse file {self.path} stayed locked by another process for "
            f"{self.lock_wait:.0f}s.",
            hint="Another process holds it; retry, or raise MLSYS_DUCKDB_LOCK_WAIT.",
        )

    def _allowed_directories(self) -> list[str]:
        """The only folders SQL may touch: job snapshots and staging (and DuckDB's spill)."""
        folders = {self.staging_dir, self.staging_dir.resolve(), Path(f"{self.path}.tmp")}
        return sorted(f"{folder}/" for folder in folders)

    def _run(self, fn, table: TableId | None = None, write: bool = False, attach: bool = True):
        """Run `fn(con)` on the file (read-only unless `write`; `attach=False`: a long read
        that gets an instance of its own), mapping DuckDB errors."""
        try:
            with self._connect(write, attach) as con:
                return fn(con)
        except duckdb.Error as error:
            mapped = translate(error, table)
            if mapped is error:
                raise
            raise mapped from None

    @staticmethod
    def _ensure_schema(con: duckdb.DuckDBPyConnection, table: TableId) -> None:
        schema = quote_ident(duckdb_schema_name(table.project, table.dataset))
        execute(con, f"CREATE SCHEMA IF NOT EXISTS {schema}")

    def _require(self, con: duckdb.DuckDBPyConnection, table: TableId) -> None:
        if not table_exists(con, table):
            raise TableNotFound(
                f"Table {table} does not exist.", hint="Check the project.dataset.table name."
            )

    # --- reads --------------------------------------------------------------------------
    def query(self, sql: str) -> pd.DataFrame:
        translated = bigquery_to_duckdb(one_query(sql), self.default_project)
        return self._run(lambda con: con.sql(translated).df(), attach=False)

    def query_arrow(self, sql: str) -> pa.Table:
        translated = bigquery_to_duckdb(one_query(sql), self.default_project)
        return self._run(lambda con: con.sql(translated).to_arrow_table(), attach=False)

    def exists(self, table: TableId) -> bool:
        if self._cache is not None:
            return self.column_names(table) is not None
        return self._run(lambda c: table_exists(c, table))

    def column_names(self, table: TableId, may_lag: bool = False) -> list[str] | None:
        def one(con) -> list[str] | None:
            return table_columns(con, table) if table_exists(con, table) else None

        if self._cache is None:
            return self._run(one, table)
        # A miss reads the columns of every table in the dataset at once: a burst of submits
        # to many output tables of one dataset then costs one turn at the file, not one each.
        dataset = (table.project, table.dataset)
        holding = getattr(self._local, "con", None) is not None
        return self._cache.get_grouped(
            ("columns", table),
            table,
            "schema",
            ("columns", *dataset),
            lambda: self._run(lambda con: dataset_columns(con, table, GROUP_TABLES)),
            coalesce=not holding,
            stale_ok=may_lag,
        )

    def schema(self, table: TableId) -> pa.Schema:
        def fn(con):
            self._require(con, table)
            return con.sql(f"SELECT * FROM {duckdb_table(table)} LIMIT 0").to_arrow_table().schema

        return self._cached(("schema", table), table, "schema", lambda: self._run(fn, table))

    def count_rows(self, table: TableId) -> int:
        def fn(con):
            self._require(con, table)
            return execute(con, f"SELECT count(*) FROM {duckdb_table(table)}")[0][0]

        return self._cached(("count", table), table, "rows", lambda: self._run(fn, table))

    def read_table(self, table: TableId, columns: list[str] | None = None) -> pa.Table:
        select = ", ".join(quote_ident(c) for c in columns) if columns else "*"

        def fn(con):
            self._require(con, table)
            return con.sql(f"SELECT {select} FROM {duckdb_table(table)}").to_arrow_table()

        question = ("read", table, tuple(columns or ()))
        return self._cached(question, table, "rows", lambda: self._run(fn, table))

    # --- writes -------------------------------------------------------------------------
    def write(
        self, data: pd.DataFrame | pa.Table, table: TableId, disposition: WriteDisposition
    ) -> int:
        disposition = check_disposition(disposition)
        arrow = (
            data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        )
        target = duckdb_table(table)

        def fn(con):
            con.register("_mlsys_input", arrow)
            execute(con, "BEGIN TRANSACTION")
            try:
                self._ensure_schema(con, table)
                exists = table_exists(con, table)
                if exists and disposition == "WRITE_EMPTY":
                    if execute(con, f"SELECT count(*) FROM {target}")[0][0]:
                        raise TableNotEmpty(
                            f"Table {table} already has rows and the write disposition is "
                            "WRITE_EMPTY.",
                            hint="Use WRITE_APPEND or WRITE_TRUNCATE, or another table.",
                        )
                if not exists or disposition == "WRITE_TRUNCATE":
                    execute(con, f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM _mlsys_input")
                else:
                    check_append_columns(table_columns(con, table), arrow.schema.names, table)
                    execute(con, f"INSERT INTO {target} BY NAME SELECT * FROM _mlsys_input")
                execute(con, "COMMIT")
                self._changed(table, schema=not exists or disposition == "WRITE_TRUNCATE")
            except BaseException:
                execute(con, "ROLLBACK")
                raise
            return arrow.num_rows

        return self._run(fn, table, write=True)

    # --- sharded reads ------------------------------------------------------------------
    def _job_dir(self, scope: JobScope) -> Path:
        return self.staging_dir / scope.job_id

    def plan_read(
        self,
        table: TableId,
        columns: list[str],
        shards: int,
        scope: JobScope,
        exclude: KeyExclusion | None = None,
    ) -> ReadPlan:
        snapshot = self._job_dir(scope) / "input.parquet"
        if not snapshot.exists():
            self._snapshot(table, columns, shards, snapshot, exclude)
        metadata = pq.ParquetFile(snapshot).metadata
        group_rows = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        return ReadPlan(
            rows_total=metadata.num_rows,
            shards=[
                {"path": str(snapshot.resolve()), "row_groups": groups, "rows": rows}
                for groups, rows in _split_row_groups(group_rows, shards)
            ],
        )

    def _snapshot(
        self,
        table: TableId,
        columns: list[str],
        shards: int,
        snapshot: Path,
        exclude: KeyExclusion | None = None,
    ) -> None:
        """Copy the projected input to one Parquet file, in row groups small enough to split
        (without the rows `exclude` names: the anti-join runs here, inside DuckDB)."""
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        tmp = snapshot.with_suffix(f".tmp-{uuid.uuid4().hex}")

        def fn(con):
            self._require(con, table)
            # A missing output table has no keys to leave out.
            anti = exclude if exclude is not None and table_exists(con, exclude.table) else None
            select = duckdb_select_new_keys(table, columns, anti)
            rows = execute(con, f"SELECT count(*) FROM {duckdb_table(table)}")[0][0]
            group = _row_group_rows(rows, shards)
            # Row order does not matter to a snapshot; keeping it costs memory that grows with
            # the table (measured: +450 MB at 10M rows with it, +180 MB without). A plain scan
            # keeps every block it read cached until the cap is reached, so under the
            # connection's cap (a quarter of the machine) the snapshot still grew with the
            # table: +100 MB from 1M to 10M rows, against +7 MB under 64MB. 64MB made a 5M-row
            # copy 40 % slower than 256MB, which is as fast as 1GB; the memory is given back
            # when the copy's connection closes, before any shard runs. An anti-join's hash
            # table needs more (it fails to pin its blocks at 64MB): it keeps the connection's
            # cap and spills beyond it.
            with set_for(
                con,
                preserve_insertion_order="false",
                memory_limit=None if anti else self.snapshot_memory,
            ):
                execute(
                    con,
                    f"COPY ({select}) TO {sql_string(str(tmp))} "
                    f"(FORMAT parquet, ROW_GROUP_SIZE {group})",
                )

        self._run(fn, table, attach=False)
        os.replace(tmp, snapshot)

    def check_shard(self, shard: dict[str, Any], scope: JobScope) -> None:
        """The shard's file must lie in the job's own staging folder (symlinks resolved)."""
        folder = self._job_dir(scope).resolve()
        path = shard.get("path")
        if not isinstance(path, str) or not Path(path).resolve().is_relative_to(folder):
            raise PermissionDenied(
                f"The plan of job {scope.job_id} names a file outside the job's staging "
                "folder; it is not read.",
                hint="The job record was altered: submit the job again.",
            )

    def read_shard(self, shard: dict[str, Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
        if not shard["row_groups"]:
            return
        parquet = pq.ParquetFile(shard["path"])
        # One row group at a time: asking for all of them at once keeps buffers of every group
        # read so far, so memory grew with the shard (flat this way).
        groups = (
            batch
            for group in shard["row_groups"]
            for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=[group])
        )
        # Row groups need not be multiples of the batch size: regroup, so the model sees
        # full batches rather than a short one at every row-group boundary.
        yield from rebatch(groups, batch_rows)

    # --- staging and commit --------------------------------------------------------------
    def _out_dir(self, scope: JobScope) -> Path:
        return self._job_dir(scope) / "out"

    def stage(
        self,
        scope: JobScope,
        shard_index: int,
        batches: Iterable[pa.RecordBatch],
        schema: pa.Schema,
    ) -> int:
        out = self._out_dir(scope)
        out.mkdir(parents=True, exist_ok=True)
        final = out / _SHARD_FILE.format(shard_index)
        tmp = out / f".{final.name}.tmp-{uuid.uuid4().hex}"
        rows = 0
        try:
            # The file lives until the commit reads it once, whole: compressing it, keeping
            # column statistics and trying dictionaries on columns of distinct numbers were
            # most of a shard's own work outside the model (a 7-column output, 1M rows: 0.40 s
            # of CPU as pyarrow's defaults, 0.13 s as here, for a smaller file). Text and
            # timestamps keep dictionaries: in an output they are mostly the job's constants.
            numbers = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
            with pq.ParquetWriter(
                tmp,
                schema,
                compression="none",
                write_statistics=False,
                use_dictionary=[f.name for f in schema if not any(t(f.type) for t in numbers)],
            ) as writer:
                for batch in batches:
                    # Snapshots mark columns NOT NULL; the staged schema decides.
                    writer.write_batch(batch if batch.schema == schema else batch.cast(schema))
                    rows += batch.num_rows
            # The rename is the moment the shard counts as staged: an attempt killed before it
            # leaves only a temp file, and a later attempt replaces an earlier one whole.
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return rows

    def staged_shards(self, scope: JobScope) -> set[int]:
        out = self._out_dir(scope)
        if not out.exists():
            return set()
        return {int(p.stem.split("-")[1]) for p in out.glob("shard-*.parquet")}

    @contextlib.contextmanager
    def landing(
        self, scope: JobScope, target: TableId, shard_count: int
    ) -> Iterator[DuckDBLanding]:
        """One transaction: the landed check, the checks of the rules and the write see the
        same table, and either all of it commits or none."""
        files = [self._out_dir(scope) / _SHARD_FILE.format(i) for i in range(shard_count)]
        try:
            with self._connect(write=True) as con:
                execute(con, "BEGIN TRANSACTION")
                try:
                    self._ensure_schema(con, target)
                    landing = DuckDBLanding(con, scope, target, files, self.commit_memory)
                    yield landing
                    execute(con, "COMMIT")
                    self._changed(target, schema=landing.replaced)
                except BaseException:
                    with contextlib.suppress(duckdb.Error):
                        execute(con, "ROLLBACK")
                    raise
        except duckdb.Error as error:
            mapped = translate(error, target)
            if mapped is error:
                raise
            raise mapped from None

    def discard(self, scope: JobScope) -> None:
        shutil.rmtree(self._job_dir(scope), ignore_errors=True)

    # --- registry -----------------------------------------------------------------------
    def merge(self, table: TableId, rows: pa.Table, keys: list[str]) -> MergeResult:
        name = duckdb_table(table)
        others = [c for c in rows.schema.names if c not in keys]
        on = " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in keys)
        differs = (
            " OR ".join(f"t.{quote_ident(c)} IS DISTINCT FROM s.{quote_ident(c)}" for c in others)
            or "FALSE"
        )
        assignments = ", ".join(f"{quote_ident(c)} = s.{quote_ident(c)}" for c in others)
        key_list = ", ".join(quote_ident(k) for k in keys)

        def fn(con):
            con.register("_mlsys_source", rows)
            execute(con, "BEGIN TRANSACTION")
            try:
                self._ensure_schema(con, table)
                created = not table_exists(con, table)
                if created:
                    execute(con, f"CREATE TABLE {name} AS SELECT * FROM _mlsys_source LIMIT 0")
                added = _add_missing_columns(con, table, rows.schema)
                updated = 0
                if others:
                    updated = execute(
                        con,
                        f"UPDATE {name} AS t SET {assignments} FROM _mlsys_source AS s "
                        f"WHERE {on} AND ({differs})",
                    )[0][0]
                inserted = execute(
                    con,
                    f"INSERT INTO {name} BY NAME SELECT s.* FROM _mlsys_source AS s "
                    f"ANTI JOIN {name} AS t USING ({key_list})",
                )[0][0]
                execute(con, "COMMIT")
                self._changed(table, schema=created or added)
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    execute(con, "ROLLBACK")
                raise
            return MergeResult(inserted=inserted, updated=updated)

        return self._run(fn, table, write=True)


def _add_missing_columns(con: duckdb.DuckDBPyConnection, table: TableId, schema: pa.Schema) -> bool:
    """Add the columns of `schema` that `table` lacks (`columns_to_add`), typed as the source
    rows' (`_mlsys_source`); whether any was added."""
    missing = columns_to_add(table, schema, table_columns(con, table))
    if not missing:
        return False
    types = dict(execute(con, "SELECT column_name, column_type FROM (DESCRIBE _mlsys_source)"))
    for f in missing:
        execute(
            con,
            f"ALTER TABLE {duckdb_table(table)} ADD COLUMN {quote_ident(f.name)} {types[f.name]}",
        )
    return True


_VECTOR_ROWS = 2_048  # DuckDB writes row groups in whole vectors


def _row_group_rows(rows: int, shards: int) -> int:
    """Rows per row group of a snapshot: about DuckDB's own 122,880 at most, at least 4 per
    shard (so a shard's reads stream), and as many groups in every shard, so that shards get
    the same rows: with 41 groups of 122,880 in 4 shards, one shard of a 5M-row job had 10 %
    more rows than the others, and its process finished last, alone."""
    shards = max(1, shards)
    per_shard = math.ceil(rows / shards)
    groups_per_shard = max(4, math.ceil(per_shard / 122_880))
    vectors = max(1, math.ceil(per_shard / groups_per_shard / _VECTOR_ROWS))
    return vectors * _VECTOR_ROWS


def _split_row_groups(group_rows: list[int], shards: int) -> list[tuple[list[int], int]]:
    """Split consecutive row groups into at most `shards` parts of similar row counts."""
    if not group_rows:
        return [([], 0)]
    shards = max(1, min(shards, len(group_rows)))
    total = sum(group_rows)
    parts: list[tuple[list[int], int]] = []
    current: list[int] = []
    rows = 0
    for index, count in enumerate(group_rows):
        current.append(index)
        rows += count
        remaining_parts = shards - len(parts) - 1
        remaining_groups = len(group_rows) - index - 1
        target = total * (len(parts) + 1) / shards
        if remaining_parts and (
            sum(group_rows[: index + 1]) >= target or remaining_groups == remaining_parts
        ):
            parts.append((current, rows))
            current, rows = [], 0
    if current:
        parts.append((current, rows))
    return parts
