"""DuckDB SQL of the embedded warehouse, built by pure functions, and the translation of
BigQuery SQL to DuckDB (tested as strings). `bq_sql` is its BigQuery counterpart.

Only validated `TableId`s and column names reach these functions; identifiers are quoted
with the dialect's quote character, and values travel as query parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlsys.errors import InvalidRequest
from mlsys.ids import TableId
from mlsys.warehouse.base import KeyExclusion

if TYPE_CHECKING:  # sqlglot loads when SQL is translated: a job's run never needs it
    from sqlglot import exp


def quote_ident(name: str) -> str:
    """Double-quote an identifier for DuckDB, doubling embedded quotes."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    """A single-quoted SQL string literal (file paths in COPY / read_parquet)."""
    return "'" + text.replace("'", "''") + "'"


def duckdb_schema_name(project: str, dataset: str) -> str:
    """DuckDB has one catalog per file, so `project.dataset` becomes one schema."""
    return f"{project}.{dataset}"


def duckdb_table(table: TableId) -> str:
    return (
        f"{quote_ident(duckdb_schema_name(table.project, table.dataset))}."
        f"{quote_ident(table.table)}"
    )


def duckdb_select_new_keys(table: TableId, columns: list[str], exclude: KeyExclusion | None) -> str:
    """SELECT `columns` of `table`, without the rows whose keys `exclude` already holds."""
    select = ", ".join(f"i.{quote_ident(c)}" for c in columns) if columns else "i.*"
    sql = f"SELECT {select} FROM {duckdb_table(table)} AS i"
    if exclude is None:
        return sql
    conditions = [f"o.{quote_ident(c)} = {sql_string(v)}" for c, v in exclude.match]
    conditions += [
        f"o.{quote_ident(k)} IS NOT DISTINCT FROM i.{quote_ident(k)}" for k in exclude.keys
    ]
    return (
        f"{sql} WHERE NOT EXISTS (SELECT 1 FROM {duckdb_table(exclude.table)} AS o "
        f"WHERE {' AND '.join(conditions)})"
    )


def bigquery_to_duckdb(sql: str, default_project: str) -> str:
    """Translate BigQuery SQL (backticked `project.dataset.table` names and all) to DuckDB.

    Raises:
        InvalidRequest: the SQL does not parse as BigQuery SQL.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = sqlglot.parse(sql, read="bigquery")
    except SqlglotError as error:
        raise InvalidRequest(
            f"Could not parse the SQL: {str(error).splitlines()[0]}",
            hint="Write BigQuery SQL, e.g. SELECT * FROM `project.dataset.table`.",
        ) from None
    out = []
    for statement in statements:
        if statement is None:
            continue
        cte_names = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
        for table in statement.find_all(exp.Table):
            _map_table(table, default_project, cte_names)
        out.append(statement.sql(dialect="duckdb"))
    if not out:
        raise InvalidRequest("The SQL is empty.", hint="Pass a query such as SELECT 1.")
    return ";\n".join(out)


_SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "main"}


def _map_table(table: exp.Table, default_project: str, cte_names: set[str]) -> None:
    """`project.dataset.table` -> `"project.dataset"."table"`; `dataset.table` takes the
    default project; bare names (CTEs, table functions) are left alone."""
    from sqlglot import exp

    name, db, catalog = table.name, table.db, table.catalog
    if not db or (not catalog and db.lower() in _SYSTEM_SCHEMAS):
        return
    project = catalog or default_project
    table.set("catalog", None)
    table.set("db", exp.to_identifier(duckdb_schema_name(project, db), quoted=True))
    table.set("this", exp.to_identifier(name, quoted=True))
