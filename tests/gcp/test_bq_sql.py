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
    sql = bq_sql.insert_from(T, [S0, S1], ["id", "JobId"], "job", target_columns=["id", "JobId"])
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


OUTPUT = ["PassengerId", "Survived", "PredictionTimestamp", "ModelName", "ModelVersion", "JobId"]


def test_outputs_mlsys_creates_are_partitioned_by_day_and_clustered_for_the_anti_join():
    sql = bq_sql.create_from(T, [S0, S1], OUTPUT, replace=False)
    assert sql.startswith(
        "CREATE TABLE `proj-1.out.preds`\n"
        "PARTITION BY TIMESTAMP_TRUNC(`PredictionTimestamp`, DAY)\n"
        "CLUSTER BY `ModelName`, `ModelVersion`, `JobId` AS\nSELECT "
    )
    # An output without the model columns: clustered by what it has.
    assert "CLUSTER BY `JobId` AS" in bq_sql.create_from(T, [S0], ["id", "JobId"], False)


def test_the_landed_check_and_the_append_guard_read_the_jobs_partitions_and_cluster_only():
    landed = bq_sql.rows_of_job(T, OUTPUT)
    assert landed == (
        "SELECT COUNT(*) AS n FROM `proj-1.out.preds` "
        "WHERE `JobId` = @job_id AND `PredictionTimestamp` >= @since"
    )
    guard = bq_sql.insert_from(T, [S0], OUTPUT, "job", target_columns=OUTPUT)
    assert guard.endswith(
        "WHERE NOT EXISTS (SELECT 1 FROM `proj-1.out.preds` "
        "WHERE `JobId` = @job_id AND `PredictionTimestamp` >= @since)"
    )
    # An older output without the timestamp column: the cluster key alone.
    assert bq_sql.rows_of_job(T, ["id", "JobId"]).endswith("WHERE `JobId` = @job_id")


def test_truncate_keeps_the_table_and_swaps_its_rows_in_one_transaction():
    sql = bq_sql.truncate_insert(T, [S0, S1], OUTPUT)
    lines = sql.splitlines()
    assert lines[0] == "BEGIN TRANSACTION;" and lines[-1] == "COMMIT TRANSACTION;"
    assert lines[1] == "TRUNCATE TABLE `proj-1.out.preds`;"
    assert lines[2].startswith("INSERT INTO `proj-1.out.preds` (`PassengerId`, ")
    assert "CREATE" not in sql and "@" not in sql  # no parameters: bqemulator runs it too


def test_a_replacement_keeps_the_existing_partitioning_clustering_and_description():
    spec = bq_sql.TableSpec(
        partition_field="day",
        partition_kind="DATE",
        clustering=("PassengerId",),
        description='Scores "v2"',
    )
    sql = bq_sql.create_from(T, [S0], ["day", "PassengerId", "JobId"], True, spec)
    assert sql.startswith(
        "CREATE OR REPLACE TABLE `proj-1.out.preds`\n"
        "PARTITION BY `day`\n"
        "CLUSTER BY `PassengerId`\n"
        'OPTIONS (description = "Scores \\"v2\\"") AS\n'
    )


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
