"""BigQuery warehouse (`bigquery://PROJECT`) through google-cloud-bigquery and the Storage Read API.

- Reads: one Storage Read session per job, opened when the job is planned, with one stream
  per shard: the streams split the rows, so the job's columns are read (and billed) once
  whatever the shard count; no row restriction. Arrow record batches.
- Writes: load jobs from Parquet with an explicit schema (`bq_schema`), never dtype inference.
- Job output: one staging table per (job, shard) in `{project}.mlsys_{env}`, expiring on its own
  if abandoned, landed by one atomic statement (CREATE TABLE ... AS SELECT, or INSERT ...
  SELECT guarded by "this JobId has not landed yet"). Outputs it creates are partitioned by day
  on PredictionTimestamp and clustered by (ModelName, ModelVersion, JobId); the guard reads only
  the job's partitions.
- Errors: transient ones are retried by the client libraries (`google.api_core` retry with
  backoff); what remains is mapped to `mlsys.errors`.

`BIGQUERY_EMULATOR_HOST` (REST, with scheme) and `BIGQUERY_STORAGE_EMULATOR_HOST` (gRPC,
host:port) point the clients at local emulators with anonymous credentials.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from mlsys.errors import (
    InvalidRequest,
    TableNotEmpty,
)
from mlsys.ids import TableId, check_column
from mlsys.settings import Settings, get_settings
from mlsys.warehouse import bq_sql
from mlsys.warehouse.base import (
    JobScope,
    KeyExclusion,
    MergeResult,
    OutputLanding,
    ReadPlan,
    Warehouse,
    WriteDisposition,
    check_disposition,
)
from mlsys.warehouse.batches import rebatch
from mlsys.warehouse.bigquery.client import (
    REST_EMULATOR_ENV,
    BigQueryTables,
    bigquery_storage,
    gexc,
    translated,
)
from mlsys.warehouse.bigquery.landing import StagedOutput
from mlsys.warehouse.bq_schema import (
    api_fields,
    arrow_schema,
    bq_fields,
    check_append,
    loadable_schema,
    null_counts,
    to_loadable,
)

log = logging.getLogger(__name__)

STAGING_TTL = dt.timedelta(days=2)


class BigQueryWarehouse(Warehouse):
    """Tables in BigQuery; mlsys' own tables (staging, registry) in `{project}.mlsys_{env}`."""

    scheme = "bigquery"

    def __init__(
        self,
        project: str,
        settings: Settings | None = None,
        client: Any = None,
        read_client: Any = None,
        staging_ttl: dt.timedelta = STAGING_TTL,
        retry_timeout: float = 600.0,
        emulated: bool | None = None,
        read_sessions: bool = True,
    ) -> None:
        """
        Args:
            project: project that runs (and pays for) jobs.
            client: a `bigquery.Client` (tests inject one); default: Application Default
                Credentials, or anonymous against BIGQUERY_EMULATOR_HOST.
            read_client: a `bigquery_storage.BigQueryReadClient`; default likewise, or an
                insecure channel to BIGQUERY_STORAGE_EMULATOR_HOST.
            staging_ttl: expiration of staging tables, so abandoned staging disappears.
            retry_timeout: seconds transient API errors are retried (with backoff) before
                BackendUnavailable.
            emulated: work around what bqemulator lacks (query results through the Storage
                Read API, DML statistics); default: whether BIGQUERY_EMULATOR_HOST is set.
            read_sessions: whether this process may open Storage Read sessions for query
                results; the API's account may not (its reads are small), so they come over
                REST there.
        """
        self.project = self.default_project = project
        self.settings = settings or get_settings()
        if emulated is None:
            emulated = bool(os.environ.get(REST_EMULATOR_ENV))
        self.tables = BigQueryTables(
            project,
            self.settings.bq_location,
            client,
            read_client,
            staging_ttl,
            retry_timeout,
            emulated,
        )
        self.output = StagedOutput(self.tables, self.settings)
        self.read_sessions = read_sessions

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> BigQueryWarehouse:
        """Open `bigquery://PROJECT` (`bigquery://` alone: GCP_PROJECT_ID)."""
        settings = settings or get_settings()
        project = url.split("://", 1)[1].strip("/") or settings.gcp_project_id
        TableId(project, "d", "t")  # validates the project id
        return cls(project, settings)

    @property
    def client(self) -> Any:
        """The `bigquery.Client` (for what the warehouse does not wrap)."""
        return self.tables.client

    @property
    def read_client(self) -> Any:
        """The `bigquery_storage.BigQueryReadClient`."""
        return self.tables.read_client

    @property
    def emulated(self) -> bool:
        return self.tables.emulated

    def close(self) -> None:
        """Release connections (clients this object made)."""
        self.tables.close()

    # --- reading -------------------------------------------------------------------------

    def query(self, sql: str) -> pd.DataFrame:
        """Run BigQuery SQL and return the result.

        Raises:
            TableNotFound: the SQL names a table that does not exist.
            InvalidRequest: the SQL does not parse or run.
        """
        with translated("Query"):
            job = self.tables.run(sql)
            # Large results come through the Storage Read API; small ones over REST.
            storage = self.tables.read_client if self.read_sessions and not self.emulated else None
            table = job.to_arrow(bqstorage_client=storage, create_bqstorage_client=False)
        return table.to_pandas()

    def exists(self, table: TableId) -> bool:
        """Whether the table exists."""
        return self.tables.get_or_none(table) is not None

    def schema(self, table: TableId) -> pa.Schema:
        """Arrow schema of the table. Raises TableNotFound."""
        return arrow_schema(api_fields(self.tables.get(table)))

    def count_rows(self, table: TableId) -> int:
        """Number of rows. Raises TableNotFound."""
        return self.tables.rows(self.tables.get(table))

    def read_table(self, table: TableId, columns: list[str] | None = None) -> pa.Table:
        """Read a whole (small) table, e.g. the registry. Raises TableNotFound.

        Through `tabledata.list` (REST pages), not a Storage Read session: it needs only
        `bigquery.tables.getData` on the table's dataset, which is what the API's service
        account holds on `mlsys_{env}` (no read sessions, no jobs: the web process only reads).
        """
        meta = self.tables.get(table)
        names = [f.name for f in meta.schema]
        columns = [check_column(c) for c in (columns or names)]
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise InvalidRequest(f"Table {table} has no column(s) {unknown}.")
        fields = [f for f in meta.schema if f.name in columns]
        with translated(f"Reading {table}"):
            rows = self.tables.client.list_rows(
                meta, selected_fields=fields, retry=self.tables.retry
            )
            data = rows.to_arrow(create_bqstorage_client=False)
        schema = arrow_schema([f.to_api_repr() for f in fields])
        return to_loadable(data, pa.schema([pa.field(f.name, f.type) for f in schema])).select(
            columns
        )

    def plan_read(
        self,
        table: TableId,
        columns: list[str],
        shards: int,
        scope: JobScope,
        exclude: KeyExclusion | None = None,
    ) -> ReadPlan:
        """One Storage Read session for the whole job, with at most `shards` streams: one shard
        per stream.

        The API bills a session for the bytes of the selected columns its streams read, and the
        streams of one session split the rows between them: the job reads (and pays for) its
        columns once, whatever the shard count. BigQuery may answer fewer streams than asked
        for (a small table gets one); the plan has one shard per stream it got. With `exclude`,
        a query first freezes the new keys' rows into the job's snapshot table (the anti-join
        runs in BigQuery), and the session reads that.
        """
        if exclude is not None and self.exists(exclude.table):
            snapshot = self.output.snapshot_table(scope)
            self.tables.ensure_dataset(snapshot.project, snapshot.dataset)
            sql, params = bq_sql.snapshot_new_keys(snapshot, table, columns, exclude)
            self.tables.run(sql, params, what=f"Selecting new keys of {table}")
            table = snapshot
        return self._plan(table, columns, shards)

    def _plan(self, table: TableId, columns: list[str], shards: int) -> ReadPlan:
        columns = [check_column(c) for c in columns]
        meta = self.tables.get(table)
        rows = self.tables.rows(meta)
        base = {"table": str(table), "columns": columns}
        if not rows:
            return ReadPlan(rows_total=0, shards=[{**base, "stream": None, "index": 0, "count": 1}])
        session = self._open_session(table, columns, max(1, shards))
        streams = [s.name for s in session.streams] or [None]
        schema = base64.b64encode(session.arrow_schema.serialized_schema).decode()
        expires = session.expire_time.isoformat() if session.expire_time else None
        return ReadPlan(
            rows_total=rows,
            shards=[
                {
                    **base,
                    "session": session.name,
                    "expires": expires,
                    "stream": stream,
                    "schema": schema,
                    "index": index,
                    "count": len(streams),
                }
                for index, stream in enumerate(streams)
            ],
        )

    def _open_session(self, table: TableId, columns: list[str], streams: int) -> Any:
        """The job's read session: `columns` of `table` as of now, in up to `streams` streams.
        No row restriction: every stream reads its own part of the rows."""
        types = bigquery_storage.types
        request = types.ReadSession(
            table=f"projects/{table.project}/datasets/{table.dataset}/tables/{table.table}",
            data_format=types.DataFormat.ARROW,
            read_options=types.ReadSession.TableReadOptions(selected_fields=columns),
        )

        def attempt() -> Any:
            return self.tables.read_client.create_read_session(
                parent=f"projects/{self.project}", read_session=request, max_stream_count=streams
            )

        with translated(f"Reading {table}"):
            return self.tables.retried(attempt, f"Reading {table}")

    def read_shard(self, shard: dict[str, Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Stream one shard (one stream of the job's session) as record batches of at most
        `batch_rows` rows.

        The client resumes a broken stream from its last offset by itself. A session lives at
        least 6 hours; a shard that starts after its session expired cannot be read again the
        same way (another session splits the rows differently), so the job fails and says so.
        """
        if "stream" not in shard:
            # Planned by an earlier version (a session per shard): never read it as empty.
            raise InvalidRequest(
                f"Shard {shard.get('index')} of {shard.get('table')} was planned by an earlier "
                "version of mlsys, which read each shard through a session of its own.",
                hint="Run the job again: it is planned with one read session for all shards.",
            )
        if shard["stream"] is None:  # nothing to read (an empty table)
            return
        try:
            yield from self._read_stream(shard["stream"], shard, _stream_schema(shard), batch_rows)
        except gexc.FailedPrecondition as exc:
            if not _expired(exc):
                raise
            raise InvalidRequest(
                f"The job's read session of {shard['table']} expired ({exc.message}) before "
                f"shard {shard['index']} was read: BigQuery keeps a read session 6 hours.",
                hint="Run the job again (with more workers, or fewer jobs queued before it).",
            ) from exc

    def _read_stream(
        self, stream: str | None, shard: dict[str, Any], schema: pa.Schema, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        if stream is None:
            return
        # Iterating the stream yields ReadRowsResponse messages; the client reconnects at the
        # last offset by itself when the connection breaks. Expiry is left to the caller.
        try:
            pages = (
                pa.ipc.read_record_batch(
                    pa.py_buffer(message.arrow_record_batch.serialized_record_batch), schema
                ).select(shard["columns"])  # the API sends table order, whatever was asked
                for message in self.tables.read_client.read_rows(stream)
                if message.row_count
            )
            yield from rebatch(pages, batch_rows)
        except gexc.FailedPrecondition as exc:
            if _expired(exc):
                raise
            with translated("Reading a table stream"):
                raise

    # --- writing -------------------------------------------------------------------------

    def write(
        self, data: pd.DataFrame | pa.Table, table: TableId, disposition: WriteDisposition
    ) -> int:
        """Write a small frame with one load job; creates the dataset and the table.

        Returns:
            Rows written.
        Raises:
            TableNotEmpty: WRITE_EMPTY and the table has rows.
            SchemaMismatch: WRITE_APPEND with columns the table does not have.
        """
        check_disposition(disposition)
        arrow = (
            data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        )
        fields = bq_fields(arrow.schema)
        self.tables.ensure_dataset(table.project, table.dataset)
        if (existing := self.tables.get_or_none(table)) is not None:
            if disposition == "WRITE_EMPTY" and self.tables.rows(existing) > 0:
                raise TableNotEmpty(f"Table {table} already has rows (WRITE_EMPTY).")
            if disposition == "WRITE_APPEND":
                fields = check_append(api_fields(existing), arrow.schema, table, null_counts(arrow))
        schema = loadable_schema(arrow_schema(fields))
        for f in fields:  # columns the table has and the data lacks are NULL
            if f["name"] not in arrow.column_names:
                arrow = arrow.append_column(f["name"], pa.nulls(arrow.num_rows, pa.null()))
        like = existing if disposition == "WRITE_TRUNCATE" else None
        self.tables.write_arrow(to_loadable(arrow, schema), table, fields, disposition, like)
        return arrow.num_rows

    # --- job output: staging, landing, discard, and the registry's MERGE (landing.py) -----

    def stage(
        self,
        scope: JobScope,
        shard_index: int,
        batches: Iterable[pa.RecordBatch],
        schema: pa.Schema,
    ) -> int:
        return self.output.stage(scope, shard_index, batches, schema)

    def staged_shards(self, scope: JobScope) -> set[int]:
        return self.output.staged_shards(scope)

    def landing(
        self, scope: JobScope, target: TableId, shard_count: int
    ) -> contextlib.AbstractContextManager[OutputLanding]:
        """No transaction: each landing step is one atomic statement, and the append is
        guarded (see `landing.Landing`)."""
        return contextlib.nullcontext(self.output.landing(scope, target, shard_count))

    def discard(self, scope: JobScope) -> None:
        self.output.discard(scope)

    def merge(self, table: TableId, rows: pa.Table, keys: list[str]) -> MergeResult:
        return self.output.merge(table, rows, keys)


def _expired(exc: Exception) -> bool:
    """A read session or stream past its expiry (FAILED_PRECONDITION, "... expired ...")."""
    return "expired" in str(getattr(exc, "message", exc)).lower()


def _stream_schema(shard: dict[str, Any]) -> pa.Schema:
    """Arrow schema of a read session's messages (all table columns of the session)."""
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(shard["schema"])))
