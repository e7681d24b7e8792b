"""Every Google Cloud client mlsys uses is built here, so every call can be recorded.

The BigQuery warehouse (`bigquery.Client`, `BigQueryReadClient`) and the GCS model store
(`storage.Client`) get their clients from these functions, in every process. With
MLSYS_GOOGLE_CALL_LOG set to a file, each client is wrapped so that every public call (and every
call on the buckets and blobs a storage client hands out) appends one JSON line: the process
(MLSYS_PROCESS: web, worker, beat, flower, deployer), the call (`Client.query`), and what it names
(tables, a bucket, an object, the SQL). The permission test (tests/gcp) maps each recorded call
to its IAM permission (infra/permissions.toml) and checks that Terraform grants it to that
process' account. Off (the default), the clients are the libraries' own, unwrapped.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

CALL_LOG_ENV = "MLSYS_GOOGLE_CALL_LOG"
PROCESS_ENV = "MLSYS_PROCESS"

_write_lock = threading.Lock()


def bigquery_client(project: str, location: str | None, emulator: str | None = None) -> Any:
    """A `bigquery.Client`: Application Default Credentials, or anonymous against `emulator`
    (a REST base URL)."""
    from google.cloud import bigquery

    if emulator:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        client = bigquery.Client(
            project=project,
            location=location,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=emulator),
        )
    else:
        client = bigquery.Client(project=project, location=location)
    return recorded(client, "Client")


def bigquery_read_client(credentials: Any = None, emulator: str | None = None) -> Any:
    """A Storage Read API client: `credentials`, or an insecure channel to `emulator`
    (host:port)."""
    from google.cloud import bigquery_storage

    if emulator:
        import grpc
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
            BigQueryReadGrpcTransport,
        )

        channel = grpc.insecure_channel(emulator, options=[("grpc.max_receive_message_length", -1)])
        client = bigquery_storage.BigQueryReadClient(
            transport=BigQueryReadGrpcTransport(channel=channel)
        )
    else:
        client = bigquery_storage.BigQueryReadClient(credentials=credentials)
    return recorded(client, "BigQueryReadClient")


def storage_client(project: str | None) -> Any:
    """A `storage.Client` (STORAGE_EMULATOR_HOST is honoured by the library itself)."""
    from google.cloud import storage

    return recorded(storage.Client(project=project), "Client")


def credentials_of(client: Any) -> Any:
    """The credentials a (possibly recorded) client was built with."""
    return getattr(client, "_inner", client)._credentials


def recorded(client: Any, kind: str) -> Any:
    """`client` itself, or (MLSYS_GOOGLE_CALL_LOG set) a proxy recording its calls."""
    path = os.environ.get(CALL_LOG_ENV)
    if not path:
        return client
    return _Recorded(client, kind, path, os.environ.get(PROCESS_ENV) or "unknown")


class _Recorded:
    """Forwards everything to the client; each public call appends a line to the log first."""

    def __init__(self, inner: Any, kind: str, path: str, process: str) -> None:
        self._inner, self._kind, self._path, self._process = inner, kind, path, process

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name.startswith("_") or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._write(name, args, kwargs)
            result = value(*args, **kwargs)
            # A storage client's buckets and blobs make calls of their own.
            child = type(result).__name__
            if child in ("Bucket", "Blob") and type(result).__module__.startswith(
                "google.cloud.storage"
            ):
                return _Recorded(result, child, self._path, self._process)
            return result

        return call

    def _write(self, name: str, args: tuple, kwargs: dict) -> None:
        line = {
            "process": self._process,
            "call": f"{self._kind}.{name}",
            "on": _name(self._inner) if self._kind in ("Bucket", "Blob") else None,
            "args": [_name(a) for a in args],
            "kwargs": {k: _name(v) for k, v in kwargs.items() if k in _NAMED_KWARGS},
        }
        with _write_lock, open(self._path, "a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")


#: Keyword arguments that name what a call acts on.
_NAMED_KWARGS = ("parent", "read_session", "destination", "name", "table", "dataset")


def _name(value: Any) -> Any:
    """What an argument names, as text: a table id, a dataset, a bucket, an object, the SQL."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    kind = type(value).__name__
    if kind in ("Table", "TableReference", "TableListItem"):
        return f"{value.project}.{value.dataset_id}.{value.table_id}"
    if kind in ("Dataset", "DatasetReference"):
        return f"{value.project}.{value.dataset_id}"
    if kind == "ReadSession":
        return value.table
    if kind == "Bucket":
        return value.name
    if kind == "Blob":
        return f"{value.bucket.name}/{value.name}"
    if isinstance(value, list | tuple):
        return [_name(v) for v in value]
    return kind
