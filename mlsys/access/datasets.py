"""Which tables a principal's jobs may touch: its dataset globs and the truncate scope.

The same rules answer an API request and a schedule's firing (checked again then, with the
principal's credentials read afresh), so both call these and nothing else.
"""

from __future__ import annotations

import fnmatch

from mlsys.access.principal import Principal, Scope
from mlsys.errors import PermissionDenied
from mlsys.ids import TableId


def dataset_of(table: TableId) -> str:
    """`project.dataset`, the form the principals' globs match."""
    return f"{table.project}.{table.dataset}"


def allowed_dataset(table: TableId, patterns: tuple[str, ...]) -> bool:
    """Empty patterns allow any dataset; otherwise `project.dataset` must match one glob."""
    return not patterns or any(fnmatch.fnmatchcase(dataset_of(table), p) for p in patterns)


def may_read(table: TableId | str, principal: Principal) -> bool:
    """Whether the principal's jobs may read `table` (its input or output datasets)."""
    table = TableId.parse(str(table))
    return allowed_dataset(table, principal.input_datasets) or allowed_dataset(
        table, principal.output_datasets
    )


def check_predict(
    input_table: TableId, output_table: TableId, write_disposition: str, principal: Principal
) -> None:
    """What a predict job may do beyond the predict scope.

    Raises:
        PermissionDenied: WRITE_TRUNCATE without the truncate scope, or a table outside the
            principal's datasets.
    """
    if write_disposition == "WRITE_TRUNCATE" and not principal.has(Scope.TRUNCATE):
        raise PermissionDenied(
            f"Principal {principal.name!r} may not replace tables (WRITE_TRUNCATE needs the "
            "'truncate' scope).",
            hint="Use WRITE_APPEND or WRITE_EMPTY, or ask for the truncate scope.",
        )
    for role, table, patterns in (
        ("input_table", input_table, principal.input_datasets),
        ("output_table", output_table, principal.output_datasets),
    ):
        if not allowed_dataset(table, patterns):
            raise PermissionDenied(
                f"Principal {principal.name!r} may not use {dataset_of(table)} as {role}.",
                hint=f"Its {role.split('_')[0]} datasets are: {', '.join(patterns)}.",
            )


def check_evaluation(output_table: TableId, labels_table: TableId, principal: Principal) -> None:
    """An evaluation reads both tables, so both must be tables the principal may read.

    Raises:
        PermissionDenied: either table is outside the principal's input and output datasets.
    """
    for role, table in (("output_table", output_table), ("labels_table", labels_table)):
        if not may_read(table, principal):
            raise PermissionDenied(
                f"Principal {principal.name!r} may not read {dataset_of(table)} ({role}).",
                hint="Evaluate tables in the principal's input or output datasets.",
            )
