"""The anti-join of incremental predictions, as SQL strings on both backends."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlsys.ids import ModelRef, TableId
from mlsys.incremental import check_keys, check_mode, exclusion
from mlsys.pinned import PinnedModel
from mlsys.predict import PredictSpec
from mlsys.warehouse.base import KeyExclusion
from mlsys.warehouse.bq_sql import snapshot_new_keys
from mlsys.warehouse.duckdb_sql import duckdb_select_new_keys

pytestmark = pytest.mark.unit

SOURCE = TableId("proj", "d", "input")
OUTPUT = TableId("proj", "d", "out")
EXCLUDE = KeyExclusion(OUTPUT, ("id", "day"), (("ModelName", "m"), ("ModelVersion", "v2")))


def test_duckdb_selects_only_keys_without_a_prediction_of_this_version():
    sql = duckdb_select_new_keys(SOURCE, ["id", "x"], EXCLUDE)
    assert sql == (
        'SELECT i."id", i."x" FROM "proj.d"."input" AS i WHERE NOT EXISTS (SELECT 1 FROM '
        '"proj.d"."out" AS o WHERE o."ModelName" = \'m\' AND o."ModelVersion" = \'v2\' AND '
        'o."id" IS NOT DISTINCT FROM i."id" AND o."day" IS NOT DISTINCT FROM i."day")'
    )
    assert (
        duckdb_select_new_keys(SOURCE, ["id"], None) == 'SELECT i."id" FROM "proj.d"."input" AS i'
    )


def test_bigquery_freezes_new_keys_into_the_snapshot_once_with_parameters():
    snapshot = TableId("proj", "mlsys_dev", "_mlsys_snapshot_job_1")
    sql, params = snapshot_new_keys(snapshot, SOURCE, ["id", "x"], EXCLUDE)
    assert sql.startswith("CREATE TABLE IF NOT EXISTS `proj.mlsys_dev._mlsys_snapshot_job_1`")
    assert "SELECT I.`id`, I.`x` FROM `proj.d.input` AS I" in sql
    assert "O.`ModelName` = @match_0 AND O.`ModelVersion` = @match_1" in sql
    assert "O.`day` IS NOT DISTINCT FROM I.`day`" in sql
    assert "'m'" not in sql  # values travel as parameters
    assert params == {"match_0": "m", "match_1": "v2"}


def test_modes_and_keys_are_checked_at_the_edge():
    assert check_mode(None, None, "WRITE_APPEND") == ("full", None)
    assert check_mode("incremental", "a, b", "WRITE_APPEND") == ("incremental", ("a", "b"))
    assert check_keys(None, ["a", "b"]) == ["a", "b"]
    spec = PredictSpec("dev", SOURCE, OUTPUT, ModelRef.parse("m", 2), mode="incremental")
    model = PinnedModel("m", 2, "bucket", "m/v2/model.pkl", "0" * 64, None, "pickle")
    found = exclusion(spec, model, ["id", "day"])
    assert found == EXCLUDE
    assert exclusion(replace(spec, mode="full"), model, ["id"]) is None
