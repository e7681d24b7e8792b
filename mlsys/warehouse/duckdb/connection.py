"""One DuckDB connection's helpers: lock conflicts retried, DuckDB's errors mapped to
`mlsys.errors`, the sandbox of file access, settings for a few statements, catalog reads, and
the one-query rule.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from mlsys.errors import (
    BackendUnavailable,
    InvalidIdentifier,
    InvalidRequest,
    PermissionDenied,
    SchemaMismatch,
    TableNotFound,
)
from mlsys.ids import TableId
from mlsys.warehouse.duckdb.sql import (
    duckdb_schema_name,
    sql_string,
)


def is_lock_conflict(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, duckdb.IOException) and ("lock" in text or "conflicting" in text)


def retry_on_lock(seconds: float):
    """Retry while another process holds the file, for at most `seconds`."""
    return retry(
        retry=retry_if_exception(is_lock_conflict),
        wait=wait_exponential_jitter(multiplier=0.01, max=0.5),
        stop=stop_after_delay(seconds),
        reraise=False,
    )


def translate(error: duckdb.Error, table: TableId | None = None) -> Exception:
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


def sandbox(con: duckdb.DuckDBPyConnection, folders: list[str]) -> None:
    """Turn off DuckDB's external access but for `folders`: no file functions (read_csv,
    read_text, glob), COPY, ATTACH, INSTALL or LOAD anywhere else. Once off, DuckDB refuses to
    turn it on again or to widen the folders while the database is open (in this process)."""
    for _ in range(3):
        if not execute(con, "SELECT current_setting('enable_external_access')")[0][0]:
            return  # another connection of this process sandboxed the database already
        try:
            listed = ", ".join(sql_string(folder) for folder in folders)
            execute(con, f"SET allowed_directories = [{listed}]")
            execute(con, "SET enable_external_access = false")
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
def set_for(con: duckdb.DuckDBPyConnection, **values: str | None) -> Iterator[None]:
    """Run the statements inside with DuckDB settings `values` (None: leave that one as it is),
    then put the connection's own back: a session, or a thread's kept instance
    (mlsys.warehouse.duckdb.readers), goes on using it."""
    values = {name: value for name, value in values.items() if value is not None}
    before = {
        name: execute(con, f"SELECT current_setting({sql_string(name)})")[0][0] for name in values
    }
    for name, value in values.items():
        execute(con, f"SET {name} = {sql_string(value)}")
    try:
        yield
    finally:
        for name, value in before.items():
            execute(con, f"SET {name} = {sql_string(str(value))}")


def table_exists(con: duckdb.DuckDBPyConnection, table: TableId) -> bool:
    row = execute(
        con,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [duckdb_schema_name(table.project, table.dataset), table.table],
    )
    return bool(row and row[0][0])


def table_columns(con: duckdb.DuckDBPyConnection, table: TableId) -> list[str]:
    rows = execute(
        con,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [duckdb_schema_name(table.project, table.dataset), table.table],
    )
    return [row[0] for row in rows]


def dataset_columns(
    con: duckdb.DuckDBPyConnection, table: TableId, most: int
) -> dict[tuple, tuple[TableId, list[str] | None]]:
    """{("columns", table): (table, its column names)} for every table of `table`'s dataset,
    or only for `table` where the dataset has more than `most` tables (a read cache keeps that
    many answers at most); `table` itself maps to None where it does not exist."""
    rows = execute(
        con,
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = ? ORDER BY table_name, ordinal_position",
        [duckdb_schema_name(table.project, table.dataset)],
    )
    found: dict[str, list[str]] = {}
    for name, column in rows:
        found.setdefault(name, []).append(column)
    if len(found) > most:
        found = {table.table: found[table.table]} if table.table in found else {}
    answers: dict[tuple, tuple[TableId, list[str] | None]] = {}
    for name, columns in found.items():
        try:
            seen = TableId(table.project, table.dataset, name)
        except InvalidIdentifier:  # made outside mlsys: no TableId can ask for it
            continue
        answers[("columns", seen)] = (seen, columns)
    answers.setdefault(("columns", table), (table, None))
    return answers


def execute(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    """Execute and drain: DuckDB refuses new work on a connection with an unfinished result."""
    return con.execute(sql, params).fetchall() if params else con.execute(sql).fetchall()


def check_append_columns(existing: list[str], incoming: list[str], table: TableId) -> None:
    unknown = [c for c in incoming if c not in existing]
    if unknown:
        raise SchemaMismatch(
            f"Table {table} has no columns {unknown}.",
            hint=f"It has {existing}; use WRITE_TRUNCATE to replace it, or rename the columns.",
        )
