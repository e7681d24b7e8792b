"""mlsys' own datasets are never a job's input or output.

The registry, job staging and every other table mlsys creates live in `{project}.mlsys_{env}`
(settings.dataset_for). A job that could write there could replace the registry and make
workers load an artifact nobody registered; one that could read there could copy it out. So
every route that starts a job (API, CLI, schedules) parses its spec through
`check_job_tables`, and the worker checks again before it reads or writes.
"""

from __future__ import annotations

from mlsys.errors import InvalidRequest, ProtectedTable
from mlsys.ids import TableId
from mlsys.settings import Settings


def protected_datasets(settings: Settings) -> set[tuple[str, str]]:
    """(project, dataset) of mlsys' own datasets, lower-cased (DuckDB folds case)."""
    project = settings.gcp_project_id.lower()
    return {(project, settings.dataset_for(env).lower()) for env in settings.environments}


def is_protected(table: TableId, settings: Settings) -> bool:
    return (table.project.lower(), table.dataset.lower()) in protected_datasets(settings)


def check_job_tables(input_table: TableId, output_table: TableId, settings: Settings) -> None:
    """Refuse a job that reads or writes mlsys' own datasets, or writes over its own input.

    Raises:
        ProtectedTable: either table is in `{project}.{BQ_DATASET}_{env}`.
        InvalidRequest: the output table is the input table.
    """
    for role, table in (("input_table", input_table), ("output_table", output_table)):
        if is_protected(table, settings):
            raise ProtectedTable(
                f"{role} {table} is in {table.project}.{table.dataset}, a dataset mlsys keeps "
                "its own tables in (registry, staging); no job may read or write it.",
                hint="Choose a table in another dataset.",
            )
    if _same_table(input_table, output_table):
        raise InvalidRequest(
            f"output_table {output_table} is the input_table.",
            hint="Write predictions to another table; a job never overwrites its own input.",
        )


def _same_table(a: TableId, b: TableId) -> bool:
    return (a.project.lower(), a.dataset.lower(), a.table.lower()) == (
        b.project.lower(),
        b.dataset.lower(),
        b.table.lower(),
    )
