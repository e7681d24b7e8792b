"""The client side of BigQuery: the SDK's clients (rebuilt after a fork, pointed at the
emulators when `BIGQUERY_EMULATOR_HOST` / `BIGQUERY_STORAGE_EMULATOR_HOST` say so), retries, and
the table and job primitives (`BigQueryTables`) the warehouse and its job output are written
against, each mapping what the client raises to `mlsys.errors` (`translated`).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import requests

from mlsys import google_clients
from mlsys.errors import (
    BackendUnavailable,
    InvalidRequest,
    MissingExtra,
    MlsysError,
    PermissionDenied,
    TableNotFound,
)
from mlsys.ids import TableId
from mlsys.warehouse import bq_sql
from mlsys.warehouse.bigquery import retry as bq_retry
from mlsys.warehouse.bigquery.retry import Backoff, is_transient

try:
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from google.cloud import bigquery, bigquery_storage  # noqa: F401 - the extra is installed
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtra(
        "The bigquery:// warehouse needs the Google Cloud client libraries.",
        hint="install mlsys[gcp] (uv sync --extra gcp).",
    ) from exc

log = logging.getLogger(__name__)

REST_EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"
STORAGE_EMULATOR_ENV = "BIGQUERY_STORAGE_EMULATOR_HOST"


class TableExists(InvalidRequest):
    """A CREATE TABLE met a table created meanwhile (BigQuery's 409 "duplicate")."""


class BigQueryTables:
    """The client side of BigQuery: the clients (rebuilt after a fork), retries, and the table
    and job primitives the warehouse and its job output (`landing`) are written against, each
    mapping what the client raises to `mlsys.errors`."""

    def __init__(
        self,
        project: str,
        location: str | None,
        client: Any,
        read_client: Any,
        staging_ttl: dt.timedelta,
        retry_timeout: float,
        emulated: bool,
    ) -> None:
        self.project = project
        self.location = location
        self.staging_ttl = staging_ttl
        self.emulated = emulated
        self._given = (client, read_client)
        self._client, self._read_client = client, read_client
        self._pid = os.getpid()
        self._datasets: set[tuple[str, str]] = set()
        #: The client's retry of API calls (transient errors, with backoff).
        self.retry = bigquery.DEFAULT_RETRY.with_timeout(retry_timeout)
        # Jobs that fail with a transient reason (the client's own retry covers API calls,
        # not a job whose errorResult says jobRateLimitExceeded, quotaExceeded, ...).
        self._backoff = Backoff(deadline=retry_timeout)
        self.sleep = time.sleep

    def retried(self, attempt: Callable[[], Any], what: str) -> Any:
        """`attempt()`, again with backoff while it fails with a transient reason."""
        return self._backoff.call(attempt, transient, what, self.sleep)

    def _fresh(self) -> None:
        # gRPC channels and HTTP sessions do not survive fork(): a forked worker builds its own.
        if os.getpid() != self._pid:
            self._client, self._read_client = self._given
            self._pid = os.getpid()

    @property
    def client(self) -> Any:
        self._fresh()
        if self._client is None:
            with translated("Connecting to BigQuery"):
                emulator = os.environ.get(REST_EMULATOR_ENV)
                if emulator and "://" not in emulator:
                    emulator = f"http://{emulator}"
                self._client = google_clients.bigquery_client(self.project, self.location, emulator)
        return self._client

    @property
    def read_client(self) -> Any:
        self._fresh()
        if self._read_client is None:
            emulator = os.environ.get(STORAGE_EMULATOR_ENV)
            if emulator:
                self._read_client = google_clients.bigquery_read_client(
                    emulator=emulator.split("://", 1)[-1]
                )
            else:
                self._read_client = google_clients.bigquery_read_client(
                    credentials=google_clients.credentials_of(self.client)
                )
        return self._read_client

    def close(self) -> None:
        """Release connections (clients this object made)."""
        if self._client is not None and self._given[0] is None:
            self._client.close()
        self._client, self._read_client = self._given

    def run(self, sql: str, params: dict[str, Any] | None = None, what: str = "Query") -> Any:
        """Run one query job to completion; `params` are query parameters (str: STRING,
        datetime: TIMESTAMP)."""
        config = bigquery.QueryJobConfig(
            query_parameters=[_parameter(k, v) for k, v in (params or {}).items()]
        )

        def attempt() -> Any:
            job = self.client.query(sql, job_config=config, retry=self.retry)
            job.result(retry=self.retry)
            return job

        with translated(what):
            return self.retried(attempt, what)

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> int:
        with translated("Query"):
            rows = list(self.run(sql, params).result())
        return int(rows[0][0]) if rows else 0

    def get(self, table: TableId) -> Any:
        with translated(f"Table {table}"):
            return self.client.get_table(str(table), retry=self.retry)

    def get_or_none(self, table: TableId) -> Any:
        with translated(f"Table {table}"):
            try:
                return self.client.get_table(str(table), retry=self.retry)
            except gexc.NotFound:
                return None

    def rows(self, meta: Any) -> int:
        if meta.table_type == "TABLE" and meta.num_rows is not None and not self.emulated:
            return int(meta.num_rows)  # kept exact by load jobs and DML; no query needed
        # Views have no row count, and bqemulator does not update it after DML.
        return self.scalar(bq_sql.count_rows(_id(meta)))

    def ensure_dataset(self, project: str, dataset: str) -> None:
        if (project, dataset) in self._datasets:
            return
        with translated(f"Dataset {project}.{dataset}"):
            try:
                self.client.get_dataset(f"{project}.{dataset}", retry=self.retry)
            except gexc.NotFound:
                ds = bigquery.Dataset(f"{project}.{dataset}")
                if self.location:
                    ds.location = self.location
                try:
                    self.client.create_dataset(ds, exists_ok=True, retry=self.retry)
                except gexc.Forbidden as exc:
                    # On Google Cloud mlsys creates no dataset (no project-wide role).
                    raise TableNotFound(
                        f"Dataset {project}.{dataset} does not exist.",
                        hint=f"Create it in location {self.location or 'US'} (where mlsys_{{env}} "
                        "is) and list it in output_datasets (infra/envs/{env}/config.auto.tfvars).",
                    ) from exc
        self._datasets.add((project, dataset))

    def load(
        self, source: Any, table: TableId, fields: list[dict], disposition: str, like: Any = None
    ) -> None:
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            schema=[bigquery.SchemaField.from_api_repr(f) for f in fields],
            write_disposition=disposition,
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
        )
        if like is not None:
            # WRITE_TRUNCATE of a partitioned or clustered table must state the same spec
            # ("Incompatible table partitioning specification" otherwise); it keeps both.
            config.time_partitioning = like.time_partitioning
            config.range_partitioning = like.range_partitioning
            config.clustering_fields = like.clustering_fields
        config.parquet_options = bigquery.ParquetOptions()
        config.parquet_options.enable_list_inference = True
        start = source.tell()

        def attempt() -> None:
            source.seek(start)  # a retried load sends the file again, from its start
            # No size given: a resumable upload, one request per 100 MiB chunk.
            job = self.client.load_table_from_file(
                source, str(table), job_config=config, location=self.location
            )
            job.result(retry=self.retry)

        with translated(f"Loading into {table}"):
            self.retried(attempt, f"Loading into {table}")

    def write_arrow(
        self, data: pa.Table, table: TableId, fields: list, disposition: str, like: Any = None
    ) -> None:
        if data.num_rows == 0:
            # An empty Parquet file is not a valid load source everywhere: create the table.
            if disposition == "WRITE_TRUNCATE":
                self.drop(table)
            self.create(table, fields, exists_ok=True)
            return
        with tempfile.TemporaryFile(suffix=".parquet") as spool:
            pq.write_table(data, spool)
            spool.seek(0)
            self.load(spool, table, fields, disposition, like)

    def create(self, table: TableId, fields: list, exists_ok: bool, expires: bool = False) -> Any:
        meta = bigquery.Table(str(table), [bigquery.SchemaField.from_api_repr(f) for f in fields])
        if expires:
            meta.expires = dt.datetime.now(dt.UTC) + self.staging_ttl
        with translated(f"Creating {table}"):
            return self.client.create_table(meta, exists_ok=exists_ok, retry=self.retry)

    def expire(self, table: TableId) -> None:
        """Let `table` expire after `staging_ttl` (after a load job, which creates it)."""
        meta = bigquery.Table(str(table))
        meta.expires = dt.datetime.now(dt.UTC) + self.staging_ttl
        with translated(f"Setting the expiration of {table}"):
            self.client.update_table(meta, ["expires"], retry=self.retry)

    def copy(self, source: TableId | list[TableId], target: TableId) -> None:
        """Replace `target` with a copy of `source`, or of the rows of all tables of a list
        (one copy job: atomic, and free of query charges)."""
        config = bigquery.CopyJobConfig(write_disposition="WRITE_TRUNCATE")
        sources = [str(s) for s in source] if isinstance(source, list) else str(source)

        def attempt() -> None:
            job = self.client.copy_table(
                sources, str(target), job_config=config, location=self.location
            )
            job.result(retry=self.retry)

        with translated(f"Copying {source} to {target}"):
            self.retried(attempt, f"Copying {source}")

    def drop(self, table: TableId) -> None:
        with translated(f"Dropping {table}"):
            self.client.delete_table(str(table), not_found_ok=True, retry=self.retry)

    def list(self, project: str, dataset: str) -> list[TableId]:
        """Tables of a dataset; a missing dataset has none."""
        with translated(f"Listing {project}.{dataset}"):
            try:
                listed = list(self.client.list_tables(f"{project}.{dataset}", retry=self.retry))
            except gexc.NotFound:
                return []
        return [TableId(t.project, t.dataset_id, t.table_id) for t in listed]


def _parameter(name: str, value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return bigquery.ScalarQueryParameter(name, "TIMESTAMP", value)
    return bigquery.ScalarQueryParameter(name, "STRING", value)


def _id(meta: Any) -> TableId:
    return TableId(meta.project, meta.dataset_id, meta.table_id)


#: Errors without a reason that pass by themselves: 5xx, 429, the network.
_TRANSIENT_TYPES = (
    gexc.ServerError,
    gexc.TooManyRequests,
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    requests.ConnectionError,
    requests.Timeout,
    concurrent.futures.TimeoutError,
)


def transient(exc: BaseException) -> bool:
    """Whether a BigQuery error passes by itself (then retried, then BackendUnavailable)."""
    return is_transient(exc, _TRANSIENT_TYPES)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Map what the client raises, once retries are spent, to `mlsys.errors`: PermissionDenied
    only for accessDenied (or a reasonless 401/403), BackendUnavailable for what passes
    (quota, rate limits, backend errors), InvalidRequest for the rest."""
    try:
        yield
    except MlsysError:
        raise
    except gexc.Conflict as exc:
        raise TableExists(f"{what}: {exc.message}") from exc
    except gexc.NotFound as exc:
        raise TableNotFound(f"{what}: {exc.message}") from exc
    except gexc.GoogleAPICallError as exc:
        found = bq_retry.reasons(exc)
        if bq_retry.is_permission(exc) or (
            not found and isinstance(exc, (gexc.Forbidden, gexc.Unauthorized))
        ):
            raise PermissionDenied(
                f"{what}: access denied: {exc.message}",
                hint="Grant this process' service account the role infra/permissions.toml "
                "lists for this call (terraform apply does).",
            ) from exc
        if transient(exc):
            raise BackendUnavailable(
                f"{what}: BigQuery is busy or unavailable ({', '.join(sorted(found)) or exc.code})"
                f": {exc.message}"
            ) from exc
        raise InvalidRequest(
            f"{what}: {exc.message}" + (f" ({', '.join(sorted(found))})" if found else "")
        ) from exc
    except (
        gexc.RetryError,
        requests.ConnectionError,
        requests.Timeout,
        concurrent.futures.TimeoutError,
    ) as exc:
        raise BackendUnavailable(f"{what}: BigQuery is unavailable: {exc}") from exc
    except auth_exc.DefaultCredentialsError as exc:
        raise PermissionDenied(
            f"{what}: no Google Cloud credentials found.",
            hint="Run `gcloud auth application-default login` or set "
            "GOOGLE_APPLICATION_CREDENTIALS.",
        ) from exc
