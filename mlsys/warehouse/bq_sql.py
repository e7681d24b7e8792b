"""BigQuery SQL of the warehouse, built by pure functions from validated values.

Table ids (`TableId`) and column names (`check_column`) are the only names that reach SQL,
each quoted with backticks; values travel as query parameters (`@job_id`).
"""

from __future__ import annotations

from mlsys.ids import TableId, check_column
from mlsys.warehouse.base import JOB_ID_COLUMN, KeyExclusion


def table_ref(table: TableId) -> str:
    return f"`{table.project}.{table.dataset}.{table.table}`"


def col(name: str) -> str:
    return f"`{check_column(name)}`"


def count_rows(table: TableId) -> str:
    return f"SELECT COUNT(*) AS n FROM {table_ref(table)}"


def rows_of_job(table: TableId) -> str:
    """Rows of the job `@job_id` already in `table` (a commit lands at most once)."""
    return f"SELECT COUNT(*) AS n FROM {table_ref(table)} WHERE {col(JOB_ID_COLUMN)} = @job_id"


def _union(sources: list[TableId], columns: list[str]) -> str:
    select = ", ".join(col(c) for c in columns)
    return "\nUNION ALL\n".join(f"SELECT {select} FROM {table_ref(s)}" for s in sources)


def create_from(target: TableId, sources: list[TableId], columns: list[str], replace: bool) -> str:
    """One statement creating (or replacing) `target` with the rows of `sources`: how a commit
    lands in a new table, or replaces one (WRITE_TRUNCATE), atomically."""
    verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
    return f"{verb} {table_ref(target)} AS\n{_union(sources, columns)}"


def insert_from(target: TableId, sources: list[TableId], columns: list[str], guard: str) -> str:
    """One INSERT ... SELECT of `sources` into `target`, guarded so that a retry is harmless.

    Args:
        guard: "job" inserts only while no row of `@job_id` is in the target (WRITE_APPEND);
            "empty" only while the target has no row at all (WRITE_EMPTY).
    """
    target_sql = table_ref(target)
    names = ", ".join(col(c) for c in columns)
    if guard == "empty":
        condition = f"SELECT 1 FROM {target_sql}"
    else:
        condition = f"SELECT 1 FROM {target_sql} WHERE {col(JOB_ID_COLUMN)} = @job_id"
    return (
        f"INSERT INTO {target_sql} ({names})\n"
        f"SELECT {names} FROM (\n{_union(sources, columns)}\n)\n"
        f"WHERE NOT EXISTS ({condition})"
    )


def _on(keys: list[str]) -> str:
    return " AND ".join(f"T.{col(k)} = S.{col(k)}" for k in keys)


def count_new_keys(target: TableId, source: TableId, keys: list[str]) -> str:
    """Rows of `source` whose keys are not in `target` (what a MERGE would insert)."""
    return (
        f"SELECT COUNT(*) AS n FROM {table_ref(source)} AS S\n"
        f"WHERE NOT EXISTS (SELECT 1 FROM {table_ref(target)} AS T WHERE {_on(keys)})"
    )


def merge(target: TableId, source: TableId, columns: list[str], keys: list[str]) -> str:
    """Upsert `source` into `target` by `keys`; rows whose values are equal are not touched,
    so a merge with no change modifies nothing."""
    names = ", ".join(col(c) for c in columns)
    values = [c for c in columns if c not in keys]
    sql = f"MERGE {table_ref(target)} AS T\nUSING {table_ref(source)} AS S\nON {_on(keys)}\n"
    if values:
        changed = " OR ".join(f"T.{col(c)} IS DISTINCT FROM S.{col(c)}" for c in values)
        assignments = ", ".join(f"{col(c)} = S.{col(c)}" for c in values)
        sql += f"WHEN MATCHED AND ({changed}) THEN UPDATE SET {assignments}\n"
    return sql + f"WHEN NOT MATCHED BY TARGET THEN INSERT ({names}) VALUES ({names})"


def snapshot_new_keys(
    snapshot: TableId, source: TableId, columns: list[str], exclude: KeyExclusion
) -> tuple[str, dict[str, str]]:
    """Freeze the rows of `source` whose keys `exclude.table` does not hold yet into
    `snapshot` (an incremental job's input), once: a second run of the statement keeps the
    first snapshot. Returns the SQL and its STRING parameters (the `match` values)."""
    select = ", ".join(f"I.{col(c)}" for c in columns)
    params = {f"match_{n}": value for n, (_, value) in enumerate(exclude.match)}
    conditions = [f"O.{col(c)} = @match_{n}" for n, (c, _) in enumerate(exclude.match)]
    conditions += [f"O.{col(k)} IS NOT DISTINCT FROM I.{col(k)}" for k in exclude.keys]
    sql = (
        f"CREATE TABLE IF NOT EXISTS {table_ref(snapshot)}\n"
        "OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS\n"
        f"SELECT {select} FROM {table_ref(source)} AS I\n"
        f"WHERE NOT EXISTS (SELECT 1 FROM {table_ref(exclude.table)} AS O "
        f"WHERE {' AND '.join(conditions)})"
    )
    return sql, params
