"""Every statement sent to BigQuery, captured at the client boundary with what resolves it.

Two boundaries: the real `bigquery.Client` (the emulator suites; `patch_client` wraps its
`query` and `query_and_wait` for the session) and the strict fakes (`tests/gcp/fakes.answer`
reports the statements a fake client is sent). Each statement is kept with its query
parameters' types and the schemas of the tables it names, as they were when it was sent: from
the emulator when the client talks to one, from tables the client (or the fake) answered
`get_table` with, and from mlsys' own tables (`mlsys/tables.py`).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from tests.gcp.zetasql.analyzer import Statement

#: A table id in backticks (`project.dataset.table`), or unquoted after FROM/INTO/JOIN/...
_QUOTED = re.compile(r"`([^`.]+\.[^`.]+\.[^`.]+)`")
_BARE = re.compile(
    r"\b(?:FROM|JOIN|INTO|UPDATE|MERGE|TABLE|USING)\s+([A-Za-z][\w-]*\.\w+\.\w+)", re.IGNORECASE
)


class Capture:
    """Statements sent while one test runs, and the table schemas seen meanwhile."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.statements: list[Statement] = []
        self.schemas: dict[str, list[dict[str, Any]]] = {}
        #: get_table answers a strict fake is scripted with (name -> bigquery.Table).
        self.resolvers: list[Any] = []

    def note_table(self, table: Any) -> None:
        """Remember a `bigquery.Table`'s schema (a get_table answer)."""
        try:
            name = f"{table.project}.{table.dataset_id}.{table.table_id}"
            fields = [f.to_api_repr() for f in table.schema]
        except (AttributeError, TypeError, ValueError):
            return
        if fields:
            self.schemas[name] = fields

    def scripted_schema(self, name: str) -> list[dict[str, Any]] | None:
        for resolve in reversed(self.resolvers):
            try:
                table = resolve(name)
            except Exception:  # noqa: BLE001 - the fake's cloud has no such table
                continue
            try:
                return [f.to_api_repr() for f in table.schema] or None
            except (AttributeError, TypeError):
                continue
        return None

    def record(self, sql: Any, job_config: Any = None, emulator: str | None = None) -> None:
        if not isinstance(sql, str):
            return
        tables = {}
        for name in named_tables(sql):
            fields = (
                (emulator and emulator_schema(emulator, name))
                or self.schemas.get(name)
                or self.scripted_schema(name)
                or owned_schema(name)
            )
            if fields:
                tables[name] = fields
        self.statements.append(
            Statement(
                sql=sql, params=parameter_types(job_config), tables=tables, origin=self.origin
            )
        )


#: The capture of the running test (None outside a test).
current: Capture | None = None


def named_tables(sql: str) -> set[str]:
    return set(_QUOTED.findall(sql)) | set(_BARE.findall(sql))


def parameter_types(job_config: Any) -> Mapping[str, str]:
    types = {}
    for param in getattr(job_config, "query_parameters", None) or ():
        kind = getattr(param, "type_", None)
        if param.name and isinstance(kind, str):
            types[param.name] = kind
    return types


def owned_schema(name: str) -> list[dict[str, Any]] | None:
    """Fields of an mlsys-owned table (`*.mlsys_{env}.model_registry`, ...)."""
    from mlsys.tables import OWNED_TABLES

    project, dataset, table = name.split(".")
    owned = OWNED_TABLES.get(table)
    if owned is None or not dataset.startswith("mlsys_"):
        return None
    return [dict(f) for f in owned.fields]


def emulator_schema(url: str, name: str) -> list[dict[str, Any]] | None:
    """The table's fields as the emulator holds them now (not through a recorded client)."""
    project, dataset, table = (urllib.parse.quote(p, safe="") for p in name.split("."))
    if "://" not in url:
        url = f"http://{url}"
    path = f"{url}/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}"
    try:
        with urllib.request.urlopen(path, timeout=10) as resp:
            return json.load(resp).get("schema", {}).get("fields")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def sent(sql: Any, job_config: Any = None, emulator: str | None = None) -> None:
    """Report a statement to the running test's capture."""
    if current is not None:
        current.record(sql, job_config, emulator)


def answered(table: Any) -> None:
    """Report a get_table answer to the running test's capture."""
    if current is not None:
        current.note_table(table)


def resolver(get_table: Any) -> None:
    """Report a strict fake's scripted get_table, to look up tables a statement names."""
    if current is not None:
        current.resolvers.append(get_table)


def loaded(destination: str, schema: Any) -> None:
    """Report the schema a load job gives its destination table."""
    if current is not None:
        fields = [f.to_api_repr() for f in schema]
        current.schemas[destination.replace(":", ".")] = fields


def patch_client(client_class: Any = None) -> Any:
    """Wrap the real client's query entry points and get_table; returns an undo."""
    if client_class is None:
        from google.cloud import bigquery

        client_class = bigquery.Client
    originals = {
        name: getattr(client_class, name) for name in ("query", "query_and_wait", "get_table")
    }

    def emulator_of(client: Any) -> str | None:
        base = getattr(getattr(client, "_connection", None), "API_BASE_URL", "")
        host = os.environ.get("BIGQUERY_EMULATOR_HOST")
        return base if host and base and "googleapis.com" not in base else None

    # functools.wraps keeps the real signatures, which the strict fakes' autospec checks.
    @functools.wraps(originals["query"])
    def query(self, query, *args, **kwargs):
        sent(query, kwargs.get("job_config"), emulator_of(self))
        return originals["query"](self, query, *args, **kwargs)

    @functools.wraps(originals["query_and_wait"])
    def query_and_wait(self, query, *args, **kwargs):
        sent(query, kwargs.get("job_config"), emulator_of(self))
        return originals["query_and_wait"](self, query, *args, **kwargs)

    @functools.wraps(originals["get_table"])
    def get_table(self, *args, **kwargs):
        table = originals["get_table"](self, *args, **kwargs)
        answered(table)
        return table

    client_class.query = query
    client_class.query_and_wait = query_and_wait
    client_class.get_table = get_table

    def undo() -> None:
        for name, original in originals.items():
            setattr(client_class, name, original)

    return undo


# --- statements of the processes a test starts (subprocesses/sitecustomize.py) ---------------


class FileCapture(Capture):
    """A capture that appends each statement to a file, for the test that started this
    process to analyse."""

    def __init__(self, path: str) -> None:
        super().__init__(f"process {os.getpid()} ({' '.join(sys.argv[:3])[:120]})")
        self.path = path

    def record(self, sql: Any, job_config: Any = None, emulator: str | None = None) -> None:
        super().record(sql, job_config, emulator)
        while self.statements:
            statement = self.statements.pop()
            line = {
                "sql": statement.sql,
                "params": dict(statement.params),
                "tables": dict(statement.tables),
                "origin": statement.origin,
            }
            with open(self.path, "a", encoding="utf-8") as log:
                log.write(json.dumps(line) + "\n")


def report_to_file(path: str, client_class: Any) -> None:
    """In a process a test started: report every statement this process sends to `path`."""
    global current
    current = FileCapture(path)
    patch_client(client_class)


def read_reported(path: str, start: int) -> tuple[list[Statement], int]:
    """Statements other processes reported to `path` from byte `start`; and the new end."""
    try:
        with open(path, "rb") as log:
            log.seek(start)
            data = log.read()
    except FileNotFoundError:
        return [], start
    complete = data[: data.rfind(b"\n") + 1]
    statements = [
        Statement(sql=d["sql"], params=d["params"], tables=d["tables"], origin=d["origin"])
        for d in (json.loads(line) for line in complete.decode().splitlines() if line)
    ]
    return statements, start + len(complete)
