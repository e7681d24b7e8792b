"""The BigQuery SQL of the warehouse, as strings: names quoted, values as parameters."""

from __future__ import annotations

import pytest

from mlsys.errors import InvalidIdentifier
from mlsys.ids import TableId
from mlsys.warehouse import bq_sql

pytestmark = pytest.mark.unit

T = TableId("proj-1", "out", "preds")
S0, S1 = T.with_table("_s_0"), T.with_table("_s_1")


def test_append_is_one_insert_guarded_by_the_job_id_parameter():
    sql = bq_sql.insert_from(T, [S0, S1], ["id", "JobId"], "job")
    assert sql == (
        "INSERT INTO `proj-1.out.preds` (`id`, `JobId`)\n"
        "SELECT `id`, `JobId` FROM (\n"
        "SELECT `id`, `JobId` FROM `proj-1.out._s_0`\n"
        "UNION ALL\n"
        "SELECT `id`, `JobId` FROM `proj-1.out._s_1`\n"
        ")\n"
        "WHERE NOT EXISTS (SELECT 1 FROM `proj-1.out.preds` WHERE `JobId` = @job_id)"
    )


def test_write_empty_guards_on_an_empty_target():
    sql = bq_sql.insert_from(T, [S0], ["id"], "empty")
    assert sql.endswith("WHERE NOT EXISTS (SELECT 1 FROM `proj-1.out.preds`)")
    assert "@job_id" not in sql


def test_new_and_replaced_targets_are_one_create_statement():
    assert bq_sql.create_from(T, [S0], ["id"], replace=False).startswith(
        "CREATE TABLE `proj-1.out.preds` AS\nSELECT `id` FROM `proj-1.out._s_0`"
    )
    assert bq_sql.create_from(T, [S0], ["id"], replace=True).startswith("CREATE OR REPLACE TABLE")


def test_merge_updates_only_rows_that_differ():
    sql = bq_sql.merge(T, S0, ["name", "version", "status"], ["name", "version"])
    assert "ON T.`name` = S.`name` AND T.`version` = S.`version`" in sql
    assert "WHEN MATCHED AND (T.`status` IS DISTINCT FROM S.`status`) THEN UPDATE" in sql
    assert sql.endswith(
        "WHEN NOT MATCHED BY TARGET THEN INSERT (`name`, `version`, `status`) "
        "VALUES (`name`, `version`, `status`)"
    )
    # All columns are keys: nothing to update, only inserts.
    assert "WHEN MATCHED" not in bq_sql.merge(T, S0, ["name"], ["name"])


def test_a_column_name_that_is_not_an_identifier_never_reaches_sql():
    with pytest.raises(InvalidIdentifier):
        bq_sql.insert_from(T, [S0], ["id`; DROP TABLE x; --"], "job")
