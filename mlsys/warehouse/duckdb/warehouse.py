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
    retry,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from mlsys.errors import (
    BackendUnavailable,
    InvalidRequest,
    PermissionDenied,
    SchemaMismatch,
    TableNotEmpty,
    TableNotFound,
)
from mlsys.ids import TableId
from mlsys.resources import duckdb_config
from mlsys.settings import Settings
from mlsys.warehouse.base import (
    JOB_ID_COLUMN,
    AppendGuard,
    JobScope,
    KeyExclusion,
    MergeResult,
    OutputLanding,
    ReadPlan,
    StagedRows,
    Warehouse,
    WriteDisposition,
    check_disposition,
)
from mlsys.warehouse.batches import rebatch
from mlsys.warehouse.duckdb.file_queue import FileQueue, FileTurnTimeout
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

_SHARD_FILE = "shard-{:05d}.parquet"


def _is_lock_conflict(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, duckdb.IOException) and ("lock" in text or "conflicting" in text)


def _retry_on_lock(seconds: float):
    """Retry while another process holds the file, for at most `seconds`."""
    return retry(
        retry=retry_if_exception(_is_lock_conflict),
        wait=wait_exponential_jitter(multiplier=0.01, max=0.5),
        stop=stop_after_delay(seconds),
        reraise=False,
    )


def _translate(error: duckdb.Error, table: TableId | None = None) -> Exception:
    """Map DuckDB's exceptions to mlsys' typed errors."""
    text = str(error).splitlines()[0]
    if isinstance(error, duckdb.CatalogException) and "does not exist" in text:
        what = f"Table {table} does not exist." if table else f"{text}"
        return TableNotFound(what, hint="Check the project.dataset.table name.")
    if isinstance(error, duckdb.BinderException | duckdb.ConversionException):
        return SchemaMismatch(text)
    if isinstance(error, duckdb.PermissionException):
        return PermissionDenied(
            f"{text}.", hint="mlsys' DuckDB reads and writes only its own tables and staging."
        )
    if isinstance(error, duckdb.ParserException | duckdb.InvalidInputException):
        return InvalidRequest(text)
    return error


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
        snapshot_memory: str = "64MB",
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
        return self._cache.get(question, table, depends, read)

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
        cached it opens nothing (each read that misses attaches the file for itself)."""
        if getattr(self._local, "con", None) is not None or (not write and self._cache):
            yield
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
                        with self._reads.attached(_retry_on_lock(left)) as con:
                            yield con
                        return
                    except RetryError:
                        raise self._locked() from None
                try:
                    con = _retry_on_lock(left)(duckdb.connect)(
                        str(self.path), read_only=read_only, config=self.config
                    )
                except RetryError:
                    raise self._locked() from None
                try:
                    _sandbox(con, self._allowed_directories())
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
            mapped = _translate(error, table)
            if mapped is error:
                raise
            raise mapped from None

    @staticmethod
    def _ensure_schema(con: duckdb.DuckDBPyConnection, table: TableId) -> None:
        schema = quote_ident(duckdb_schema_name(table.project, table.dataset))
        _exec(con, f"CREATE SCHEMA IF NOT EXISTS {schema}")

    def _require(self, con: duckdb.DuckDBPyConnection, table: TableId) -> None:
        if not _table_exists(con, table):
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
        return self._cached(
            ("exists", table), table, "schema", lambda: self._run(lambda c: _table_exists(c, table))
        )

    def schema(self, table: TableId) -> pa.Schema:
        def fn(con):
            self._require(con, table)
            return con.sql(f"SELECT * FROM {duckdb_table(table)} LIMIT 0").to_arrow_table().schema

        return self._cached(("schema", table), table, "schema", lambda: self._run(fn, table))

    def count_rows(self, table: TableId) -> int:
        def fn(con):
            self._require(con, table)
            return _exec(con, f"SELECT count(*) FROM {duckdb_table(table)}")[0][0]

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
            _exec(con, "BEGIN TRANSACTION")
            try:
                self._ensure_schema(con, table)
                exists = _table_exists(con, table)
                if exists and disposition == "WRITE_EMPTY":
                    if _exec(con, f"SELECT count(*) FROM {target}")[0][0]:
                        raise TableNotEmpty(
                            f"Table {table} already has rows and the write disposition is "
                            "WRITE_EMPTY.",
                            hint="Use WRITE_APPEND or WRITE_TRUNCATE, or another table.",
                        )
                if not exists or disposition == "WRITE_TRUNCATE":
                    _exec(con, f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM _mlsys_input")
                else:
                    _check_append_columns(_table_columns(con, table), arrow.schema.names, table)
                    _exec(con, f"INSERT INTO {target} BY NAME SELECT * FROM _mlsys_input")
                _exec(con, "COMMIT")
                self._changed(table, schema=not exists or disposition == "WRITE_TRUNCATE")
            except BaseException:
                _exec(con, "ROLLBACK")
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
            anti = exclude if exclude is not None and _table_exists(con, exclude.table) else None
            select = duckdb_select_new_keys(table, columns, anti)
            rows = _exec(con, f"SELECT count(*) FROM {duckdb_table(table)}")[0][0]
            group = min(122_880, max(2_048, math.ceil(rows / max(1, shards * 4))))
            # Row order does not matter to a snapshot; keeping it costs memory that grows with
            # the table (measured: +450 MB at 10M rows with it, +180 MB without). A plain scan
            # keeps every block it read cached until the cap is reached, so under the
            # connection's cap (a quarter of the machine) the snapshot still grew with the
            # table: +100 MB from 1M to 10M rows, against +7 MB under 64MB, as fast. An
            # anti-join's hash table needs more (it fails to pin its blocks at 64MB): it keeps
            # the connection's cap and spills beyond it.
            with _set_for(
                con,
                preserve_insertion_order="false",
                memory_limit=None if anti else self.snapshot_memory,
            ):
                _exec(
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
            with pq.ParquetWriter(tmp, schema) as writer:
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
    def landing(self, scope: JobScope, target: TableId, shard_count: int) -> Iterator[_Landing]:
        """One transaction: the landed check, the checks of the rules and the write see the
        same table, and either all of it commits or none."""
        files = [self._out_dir(scope) / _SHARD_FILE.format(i) for i in range(shard_count)]
        try:
            with self._connect(write=True) as con:
                _exec(con, "BEGIN TRANSACTION")
                try:
                    self._ensure_schema(con, target)
                    landing = _Landing(con, scope, target, files, self.commit_memory)
                    yield landing
                    _exec(con, "COMMIT")
                    self._changed(target, schema=landing.replaced)
                except BaseException:
                    with contextlib.suppress(duckdb.Error):
                        _exec(con, "ROLLBACK")
                    raise
        except duckdb.Error as error:
            mapped = _translate(error, target)
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
            _exec(con, "BEGIN TRANSACTION")
            try:
                self._ensure_schema(con, table)
                created = not _table_exists(con, table)
                if created:
                    _exec(con, f"CREATE TABLE {name} AS SELECT * FROM _mlsys_source LIMIT 0")
                updated = 0
                if others:
                    updated = _exec(
                        con,
                        f"UPDATE {name} AS t SET {assignments} FROM _mlsys_source AS s "
                        f"WHERE {on} AND ({differs})",
                    )[0][0]
                inserted = _exec(
                    con,
                    f"INSERT INTO {name} BY NAME SELECT s.* FROM _mlsys_source AS s "
                    f"ANTI JOIN {name} AS t USING ({key_list})",
                )[0][0]
                _exec(con, "COMMIT")
                self._changed(table, schema=created)
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    _exec(con, "ROLLBACK")
                raise
            return MergeResult(inserted=inserted, updated=updated)

        return self._run(fn, table, write=True)


class _Landing(OutputLanding):
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
        if not _table_exists(self.con, self.target):
            return None
        return _table_columns(self.con, self.target)

    def landed(self) -> int:
        job_rows = f"FROM {self.name} WHERE {quote_ident(JOB_ID_COLUMN)} = ?"
        # Probe first: a job lands once, so the count is needed only in that rare case (the
        # probe stops at the first match instead of counting the whole table).
        if not _exec(self.con, f"SELECT 1 {job_rows} LIMIT 1", [self.scope.job_id]):
            return 0
        return _exec(self.con, f"SELECT count(*) {job_rows}", [self.scope.job_id])[0][0]

    def row_count(self) -> int:
        return _exec(self.con, f"SELECT count(*) FROM {self.name}")[0][0]

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
        _exec(self.con, f"SET memory_limit = {sql_string(self.memory_limit)}")
        return f"read_parquet([{', '.join(sql_string(str(f)) for f in self.files)}])"

    def create_from_staged(self) -> bool:
        self.replace_with_staged()
        return True

    def replace_with_staged(self) -> None:
        self.replaced = True
        _exec(self.con, f"CREATE OR REPLACE TABLE {self.name} AS SELECT * FROM {self._source()}")

    def append_staged(self, guard: AppendGuard) -> int:
        source = self._source()
        return _exec(self.con, f"INSERT INTO {self.name} BY NAME SELECT * FROM {source}")[0][0]


def _sandbox(con: duckdb.DuckDBPyConnection, folders: list[str]) -> None:
    """Turn off DuckDB's external access but for `folders`: no file functions (read_csv,
    read_text, glob), COPY, ATTACH, INSTALL or LOAD anywhere else. Once off, DuckDB refuses to
    turn it on again or to widen the folders while the database is open (in this process)."""
    for _ in range(3):
        if not _exec(con, "SELECT current_setting('enable_external_access')")[0][0]:
            return  # another connection of this process sandboxed the database already
        try:
            listed = ", ".join(sql_string(folder) for folder in folders)
            _exec(con, f"SET allowed_directories = [{listed}]")
            _exec(con, "SET enable_external_access = false")
            return
        except duckdb.InvalidInputException:
            continue  # raced with another thread doing the same; look again
    raise BackendUnavailable("Could not restrict DuckDB's file access.", hint="Retry.")


def one_query(sql: str) -> str:
    """`sql` if it is exactly one query (SELECT, WITH, UNION ...); refuses anything else, so
    `mlsys query` and `bq_get` cannot chain statements or change the warehouse."""
    import sqlglot  # loads only where SQL is run (a job's run never needs it)
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
    except SqlglotError:
        return sql  # bigquery_to_duckdb reports the syntax error
    if len(statements) != 1:
        raise InvalidRequest(
            f"Expected exactly one SQL statement, got {len(statements)}.",
            hint="Run one query at a time.",
        )
    if not isinstance(statements[0], exp.Query):
        raise InvalidRequest(
            "Only queries (SELECT ...) run here.",
            hint="Write tables with bq_put or mlsys jobs; they validate what they write.",
        )
    return sql


@contextlib.contextmanager
def _set_for(con: duckdb.DuckDBPyConnection, **values: str | None) -> Iterator[None]:
    """Run the statements inside with DuckDB settings `values` (None: leave that one as it is),
    then put the connection's own back: a session, or a thread's kept instance
    (mlsys.warehouse.duckdb.readers), goes on using it."""
    values = {name: value for name, value in values.items() if value is not None}
    before = {
        name: _exec(con, f"SELECT current_setting({sql_string(name)})")[0][0] for name in values
    }
    for name, value in values.items():
        _exec(con, f"SET {name} = {sql_string(value)}")
    try:
        yield
    finally:
        for name, value in before.items():
            _exec(con, f"SET {name} = {sql_string(str(value))}")


def _table_exists(con: duckdb.DuckDBPyConnection, table: TableId) -> bool:
    row = _exec(
        con,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [duckdb_schema_name(table.project, table.dataset), table.table],
    )
    return bool(row and row[0][0])


def _table_columns(con: duckdb.DuckDBPyConnection, table: TableId) -> list[str]:
    rows = _exec(
        con,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [duckdb_schema_name(table.project, table.dataset), table.table],
    )
    return [row[0] for row in rows]


def _exec(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    """Execute and drain: DuckDB refuses new work on a connection with an unfinished result."""
    return con.execute(sql, params).fetchall() if params else con.execute(sql).fetchall()


def _check_append_columns(existing: list[str], incoming: list[str], table: TableId) -> None:
    unknown = [c for c in incoming if c not in existing]
    if unknown:
        raise SchemaMismatch(
            f"Table {table} has no columns {unknown}.",
            hint=f"It has {existing}; use WRITE_TRUNCATE to replace it, or rename the columns.",
        )


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
