"""The rules of a job's output table, once for every backend.

When a job is prepared, `check_output` refuses early what its commit would refuse; when its
shards are staged, `commit_output` lands them through the backend's primitives
(`Warehouse.landing`). Which disposition does what, and when a job counts as landed, is decided
here and nowhere else; how each step stays atomic is the backend's.
"""

from __future__ import annotations

from mlsys.errors import InvalidRequest, SchemaMismatch, TableNotEmpty
from mlsys.ids import TableId
from mlsys.warehouse.base import (
    JOB_ID_COLUMN,
    CommitResult,
    JobScope,
    OutputLanding,
    Warehouse,
    WriteDisposition,
    check_disposition,
)


def check_output(
    warehouse: Warehouse,
    target: TableId,
    columns: list[str],
    disposition: WriteDisposition,
    writer: str,
) -> None:
    """Refuse a job whose output table cannot take what it writes (`columns`, by `writer`),
    before any shard runs.

    Raises:
        SchemaMismatch: the table exists with other columns (and is not to be replaced).
        TableNotEmpty: WRITE_EMPTY and the table has rows.
    """
    if disposition == "WRITE_TRUNCATE":
        return
    # The commit checks the columns again in its transaction: this early look may lag a write
    # that is being read again (the API's cached checks in a burst of table creations).
    existing = warehouse.column_names(target, may_lag=True)
    if existing is None:
        return
    if set(existing) != set(columns):
        raise SchemaMismatch(
            f"Output table {target} exists with columns {existing}, but {writer} writes {columns}.",
            hint="Choose a new output table, or write_disposition WRITE_TRUNCATE to replace it.",
        )
    if disposition == "WRITE_EMPTY" and warehouse.count_rows(target):
        raise _not_empty(target)


def commit_output(
    warehouse: Warehouse,
    scope: JobScope,
    target: TableId,
    shard_count: int,
    disposition: WriteDisposition,
) -> CommitResult:
    """Land the staged output of all shards in `target` in one atomic step, creating it when
    missing.

    Idempotent: when rows tagged with this job's id are already in `target`, nothing is
    written and `already_committed` is true.

    Raises:
        InvalidRequest: a shard's staging is missing.
        TableNotEmpty: WRITE_EMPTY and the target has rows.
        SchemaMismatch: the target was not written by mlsys (no JobId) and the disposition is
            not WRITE_TRUNCATE, or it cannot take the staged columns.
    """
    disposition = check_disposition(disposition)
    with warehouse.landing(scope, target, shard_count) as landing:
        result = _land(landing, scope, target, disposition)
    if result is None:  # another writer created the target since we looked: append to it
        return commit_output(warehouse, scope, target, shard_count, disposition)
    return result


def _land(
    landing: OutputLanding, scope: JobScope, target: TableId, disposition: WriteDisposition
) -> CommitResult | None:
    columns = landing.columns()
    if columns is not None and JOB_ID_COLUMN not in columns:
        if disposition != "WRITE_TRUNCATE":
            raise SchemaMismatch(
                f"Output table {target} exists but has no {JOB_ID_COLUMN} column, "
                "so it was not written by mlsys.",
                hint="Choose a new output table, or WRITE_TRUNCATE to replace it.",
            )
    elif columns is not None and (landed := landing.landed()):
        return CommitResult(rows=landed, already_committed=True)
    staged = landing.staged()
    if staged.missing:
        raise InvalidRequest(
            f"Job {scope.job_id} has no staged output for shards {staged.missing}; cannot commit."
        )
    if JOB_ID_COLUMN not in staged.columns:
        raise SchemaMismatch(f"Staged output of job {scope.job_id} has no {JOB_ID_COLUMN}.")
    if columns is None:
        return CommitResult(rows=staged.rows) if landing.create_from_staged() else None
    if disposition == "WRITE_TRUNCATE":
        landing.replace_with_staged()
        return CommitResult(rows=staged.rows)
    if set(columns) != set(staged.columns):
        # The early check (check_output) may have looked before another writer made the table.
        raise SchemaMismatch(
            f"Output table {target} has columns {columns}, but this job writes {staged.columns}.",
            hint="Choose a new output table, or write_disposition WRITE_TRUNCATE to replace it.",
        )
    if disposition == "WRITE_EMPTY" and landing.row_count():
        raise _not_empty(target)
    inserted = landing.append_staged("empty" if disposition == "WRITE_EMPTY" else "job")
    if staged.rows and not inserted:
        # The guard held: another attempt landed this job meanwhile, or (WRITE_EMPTY) someone
        # else wrote first.
        if landed := landing.landed():
            return CommitResult(rows=landed, already_committed=True)
        raise _not_empty(target)
    return CommitResult(rows=staged.rows)


def _not_empty(target: TableId) -> TableNotEmpty:
    return TableNotEmpty(
        f"Output table {target} already has rows and write_disposition is WRITE_EMPTY.",
        hint="Use WRITE_APPEND or WRITE_TRUNCATE, or another table.",
    )
