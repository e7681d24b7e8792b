"""BigQuery SQL of the warehouse, built by pure functions from validated values.

Table ids (`TableId`) and column names (`check_column`) are the only names that reach SQL,
each quoted with backticks; values travel as query parameters (`@job_id`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlsys.errors import SchemaMismatch
from mlsys.ids import TableId, check_column
from mlsys.warehouse.base import JOB_ID_COLUMN, KeyExclusion

#: Column every committed prediction row carries with the time it was predicted: job output
#: tables mlsys creates are partitioned by its day.
TIME_COLUMN = "PredictionTimestamp"
#: Clustering of the output tables mlsys creates (those of these columns the output has).
OUTPUT_CLUSTERING = ("ModelName", "ModelVersion", JOB_ID_COLUMN)


def table_ref(table: TableId) -> str:
    return f"`{table.project}.{table.dataset}.{table.table}`"


def col(name: str) -> str:
    return f"`{check_column(name)}`"


def count_rows(table: TableId) -> str:
    return f"SELECT COUNT(*) AS n FROM {table_ref(table)}"


@dataclass(frozen=True)
class TableSpec:
    """Partitioning, clustering and description of a table, as DDL renders them."""

    partition_field: str | None = None
    partition_type: str = "DAY"
    #: BigQuery type of the partitioning column: TIMESTAMP, DATETIME or DATE.
    partition_kind: str = "TIMESTAMP"
    clustering: tuple[str, ...] = ()
    description: str | None = None

    @classmethod
    def for_output(cls, columns: list[str]) -> TableSpec:
        """What mlsys gives an output table it creates: daily partitions of PredictionTimestamp,
        clustered by ModelName, ModelVersion and JobId. An incremental job's anti-join reads
        one model version's blocks, not the whole output history; a job's landed check reads
        one or two partitions."""
        return cls(
            partition_field=TIME_COLUMN if TIME_COLUMN in columns else None,
            clustering=tuple(c for c in OUTPUT_CLUSTERING if c in columns),
        )

    def ddl(self) -> str:
        parts = []
        if self.partition_field:
            unit, field = check_column(self.partition_type), col(self.partition_field)
            if self.partition_kind == "DATE":
                parts.append(
                    f"PARTITION BY {field}"
                    if unit == "DAY"
                    else f"PARTITION BY DATE_TRUNC({field}, {unit})"
                )
            else:
                trunc = "DATETIME_TRUNC" if self.partition_kind == "DATETIME" else "TIMESTAMP_TRUNC"
                parts.append(f"PARTITION BY {trunc}({field}, {unit})")
        if self.clustering:
            parts.append("CLUSTER BY " + ", ".join(col(c) for c in self.clustering))
        if self.description:
            parts.append(f"OPTIONS (description = {string_literal(self.description)})")
        return "".join(f"\n{p}" for p in parts)


def string_literal(value: str) -> str:
    """A BigQuery string literal (a raw, triple-quoted-free form with escapes)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def job_rows(columns: list[str] | None = None) -> str:
    """The condition selecting the job `@job_id`'s rows: its cluster key and, where the table
    has PredictionTimestamp, the partitions since `@since` (a job's rows are never older than
    its staging), so BigQuery reads one or two partitions of one cluster, not the whole table."""
    condition = f"{col(JOB_ID_COLUMN)} = @job_id"
    if columns is None or TIME_COLUMN in columns:
        condition += f" AND {col(TIME_COLUMN)} >= @since"
    return condition


def rows_of_job(table: TableId, columns: list[str] | None = None) -> str:
    """Rows of the job `@job_id` already in `table` (a commit lands at most once)."""
    return f"SELECT COUNT(*) AS n FROM {table_ref(table)} WHERE {job_rows(columns)}"


def _union(sources: list[TableId], columns: list[str]) -> str:
    select = ", ".join(col(c) for c in columns)
    return "\nUNION ALL\n".join(f"SELECT {select} FROM {table_ref(s)}" for s in sources)


def create_from(
    target: TableId,
    sources: list[TableId],
    columns: list[str],
    replace: bool,
    spec: TableSpec | None = None,
) -> str:
    """One statement creating (or replacing) `target` with the rows of `sources`: how a commit
    lands in a new table, or replaces one whose columns differ, atomically. BigQuery refuses
    to replace a table with another partitioning or clustering, so a replacement passes the
    existing table's `spec`."""
    verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
    options = (spec or TableSpec.for_output(columns)).ddl()
    return f"{verb} {table_ref(target)}{options} AS\n{_union(sources, columns)}"


def truncate_insert(target: TableId, sources: list[TableId], columns: list[str]) -> str:
    """WRITE_TRUNCATE of an existing table with the same columns: empty it and insert the
    staged rows in one transaction, so the table keeps its partitioning, clustering,
    description, labels and policies, and readers see the old rows or the new, never neither.
    TRUNCATE TABLE, not DELETE: it reads (and bills) nothing, and needs no partition filter."""
    names = ", ".join(col(c) for c in columns)
    return (
        "BEGIN TRANSACTION;\n"
        f"TRUNCATE TABLE {table_ref(target)};\n"
        f"INSERT INTO {table_ref(target)} ({names})\n{_union(sources, columns)};\n"
        "COMMIT TRANSACTION;"
    )


def insert_from(
    target: TableId,
    sources: list[TableId],
    columns: list[str],
    guard: str,
    target_columns: list[str] | None = None,
) -> str:
    """One INSERT ... SELECT of `sources` into `target`, guarded so that a retry is harmless.

    Args:
        guard: "job" inserts only while no row of `@job_id` (since `@since`) is in the target
            (WRITE_APPEND); "empty" only while the target has no row at all (WRITE_EMPTY).
        target_columns: the target's columns (whether it has PredictionTimestamp).
    """
    target_sql = table_ref(target)
    names = ", ".join(col(c) for c in columns)
    if guard == "empty":
        condition = f"SELECT 1 FROM {target_sql}"
    else:
        condition = f"SELECT 1 FROM {target_sql} WHERE {job_rows(target_columns)}"
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


def add_column(table: TableId, field: dict) -> str:
    """Add one nullable column (REST form, a scalar or an array of one) at the end of `table`,
    unless it is there already. One per statement: the emulator runs no more."""
    kind = field["type"]
    if kind == "RECORD":
        raise SchemaMismatch(
            f"Column {field['name']!r} is a STRUCT: add it to {table} with its Terraform schema."
        )
    if field.get("mode") == "REPEATED":
        kind = f"ARRAY<{kind}>"
    return f"ALTER TABLE {table_ref(table)} ADD COLUMN IF NOT EXISTS {col(field['name'])} {kind}"


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
