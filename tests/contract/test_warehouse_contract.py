"""What every Warehouse must do, run against each backend that can run here."""

from __future__ import annotations

import uuid

import pandas as pd
import pyarrow as pa
import pytest

from mlsys.commit import commit_output
from mlsys.errors import InvalidRequest, SchemaMismatch, TableNotEmpty, TableNotFound
from mlsys.ids import TableId
from mlsys.warehouse import JOB_ID_COLUMN, JobScope

pytestmark = [pytest.mark.integration, pytest.mark.contract]


@pytest.fixture
def table(warehouse) -> TableId:
    return TableId(warehouse.default_project, "contract", f"t_{uuid.uuid4().hex[:10]}")


@pytest.fixture
def scope() -> JobScope:
    return JobScope(f"job-{uuid.uuid4().hex[:12]}", "dev")


def _frame(n: int, start: int = 0) -> pd.DataFrame:
    ids = range(start, start + n)
    return pd.DataFrame(
        {"id": list(ids), "x": [i * 0.5 for i in ids], "name": [f"n{i}" for i in ids]}
    )


def _stage_all(warehouse, scope, plan, job_id):
    schema = pa.schema([("id", pa.int64()), ("x", pa.float64()), (JOB_ID_COLUMN, pa.string())])
    for index, shard in enumerate(plan.shards):
        batches = (
            pa.RecordBatch.from_arrays(
                [b.column("id"), b.column("x"), pa.array([job_id] * b.num_rows)], schema=schema
            )
            for b in warehouse.read_shard(shard, 100)
        )
        warehouse.stage(scope, index, batches, schema)


def test_write_then_read_round_trips(warehouse, table):
    assert not warehouse.exists(table)
    assert warehouse.write(_frame(10), table, "WRITE_APPEND") == 10
    assert warehouse.exists(table)
    assert warehouse.count_rows(table) == 10
    assert set(warehouse.schema(table).names) == {"id", "x", "name"}
    got = warehouse.read_table(table, ["id", "name"]).to_pandas().sort_values("id")
    assert got["id"].tolist() == list(range(10))
    assert got["name"].tolist()[3] == "n3"


def test_column_names_say_none_for_a_missing_table(warehouse, table):
    assert warehouse.column_names(table) is None
    warehouse.write(_frame(3), table, "WRITE_APPEND")

    assert warehouse.column_names(table) == ["id", "x", "name"]


def test_dispositions(warehouse, table):
    warehouse.write(_frame(5), table, "WRITE_APPEND")
    warehouse.write(_frame(5, 5), table, "WRITE_APPEND")
    assert warehouse.count_rows(table) == 10
    with pytest.raises(TableNotEmpty):
        warehouse.write(_frame(1), table, "WRITE_EMPTY")
    warehouse.write(_frame(3), table, "WRITE_TRUNCATE")
    assert warehouse.count_rows(table) == 3
    with pytest.raises(SchemaMismatch):
        warehouse.write(pd.DataFrame({"unknown": [1]}), table, "WRITE_APPEND")
    with pytest.raises(InvalidRequest):
        warehouse.write(_frame(1), table, "WRITE_SOMETIMES")


@pytest.mark.googlesql_rejected  # a query of a table that does not exist
def test_missing_table_is_typed(warehouse, table):
    with pytest.raises(TableNotFound):
        warehouse.schema(table)
    with pytest.raises(TableNotFound):
        warehouse.count_rows(table)
    with pytest.raises(TableNotFound):
        warehouse.query(f"SELECT * FROM `{table}`")


def test_query_speaks_bigquery_sql(warehouse, table):
    warehouse.write(_frame(10), table, "WRITE_APPEND")
    result = warehouse.query(
        f"SELECT COUNT(*) AS n, SAFE_DIVIDE(SUM(x), COUNT(*)) AS mean_x FROM `{table}` "
        "WHERE id >= 5"
    )
    assert int(result["n"][0]) == 5
    assert float(result["mean_x"][0]) == pytest.approx(3.5)


@pytest.mark.parametrize("shards", [1, 2, 4])
def test_shards_cover_every_row_once(warehouse, table, scope, shards):
    warehouse.write(_frame(5000), table, "WRITE_APPEND")
    plan = warehouse.plan_read(table, ["id", "x"], shards, scope)
    assert plan.rows_total == 5000
    assert 1 <= len(plan.shards) <= shards
    seen = []
    for shard in plan.shards:
        for batch in warehouse.read_shard(shard, 700):
            assert batch.num_rows <= 700
            assert batch.schema.names == ["id", "x"]
            seen.extend(batch.column("id").to_pylist())
    assert sorted(seen) == list(range(5000))
    warehouse.discard(scope)


def test_commit_lands_once_and_leaves_nothing_before(warehouse, table, scope):
    warehouse.write(_frame(1000), table, "WRITE_APPEND")
    target = table.with_table(table.table + "_out")
    plan = warehouse.plan_read(table, ["id", "x"], 3, scope)
    _stage_all(warehouse, scope, plan, scope.job_id)
    assert warehouse.staged_shards(scope) == set(range(len(plan.shards)))
    assert not warehouse.exists(target)  # staging is invisible

    first = commit_output(warehouse, scope, target, len(plan.shards), "WRITE_APPEND")
    again = commit_output(warehouse, scope, target, len(plan.shards), "WRITE_APPEND")
    assert (first.rows, first.already_committed) == (1000, False)
    assert again.already_committed
    assert warehouse.count_rows(target) == 1000
    warehouse.discard(scope)
    assert warehouse.staged_shards(scope) == set()


def test_restaging_a_shard_replaces_it(warehouse, table, scope):
    warehouse.write(_frame(500), table, "WRITE_APPEND")
    target = table.with_table(table.table + "_out")
    plan = warehouse.plan_read(table, ["id", "x"], 1, scope)
    _stage_all(warehouse, scope, plan, scope.job_id)
    _stage_all(warehouse, scope, plan, scope.job_id)  # a redelivered shard runs again
    assert commit_output(warehouse, scope, target, 1, "WRITE_APPEND").rows == 500
    assert warehouse.count_rows(target) == 500


def test_commit_refuses_missing_shards(warehouse, table, scope):
    target = table.with_table(table.table + "_out")
    with pytest.raises(InvalidRequest):
        commit_output(warehouse, scope, target, 2, "WRITE_APPEND")
    assert not warehouse.exists(target)


def test_commit_truncate_replaces_and_appends_add(warehouse, table):
    warehouse.write(_frame(100), table, "WRITE_APPEND")
    target = table.with_table(table.table + "_out")
    for job, disposition, expected in (
        ("job-a", "WRITE_APPEND", 100),
        ("job-b", "WRITE_APPEND", 200),
        ("job-c", "WRITE_TRUNCATE", 100),
    ):
        scope = JobScope(f"{job}-{uuid.uuid4().hex[:6]}", "dev")
        plan = warehouse.plan_read(table, ["id", "x"], 1, scope)
        _stage_all(warehouse, scope, plan, scope.job_id)
        commit_output(warehouse, scope, target, 1, disposition)
        warehouse.discard(scope)
        assert warehouse.count_rows(target) == expected


def test_commit_refuses_a_table_mlsys_did_not_write(warehouse, table, scope):
    warehouse.write(_frame(10), table, "WRITE_APPEND")
    plan = warehouse.plan_read(table, ["id", "x"], 1, scope)
    _stage_all(warehouse, scope, plan, scope.job_id)
    with pytest.raises(SchemaMismatch):
        commit_output(warehouse, scope, table, 1, "WRITE_APPEND")
    assert warehouse.count_rows(table) == 10


def test_commit_refuses_an_output_made_meanwhile_with_other_columns(warehouse, table, scope):
    """The early check of a submit may look before another writer makes the output table:
    the commit checks its columns again and lands nothing."""
    warehouse.write(_frame(10), table, "WRITE_APPEND")
    target = table.with_table(table.table + "_out")
    plan = warehouse.plan_read(table, ["id", "x"], 1, scope)
    _stage_all(warehouse, scope, plan, scope.job_id)
    other = pd.DataFrame({"id": [1], "y": [2.0], JOB_ID_COLUMN: ["another-job"]})
    warehouse.write(other, target, "WRITE_APPEND")

    with pytest.raises(SchemaMismatch, match="columns"):
        commit_output(warehouse, scope, target, 1, "WRITE_APPEND")
    assert warehouse.count_rows(target) == 1


def test_merge_upserts_and_a_no_change_merge_writes_nothing(warehouse, table):
    rows = pa.table({"name": ["a", "b"], "version": [1, 1], "status": ["ok", "ok"]})
    assert warehouse.merge(table, rows, ["name", "version"]).inserted == 2
    assert warehouse.merge(table, rows, ["name", "version"]).changed == 0
    changed = pa.table({"name": ["b", "c"], "version": [1, 1], "status": ["gone", "ok"]})
    result = warehouse.merge(table, changed, ["name", "version"])
    assert (result.inserted, result.updated) == (1, 1)
    got = warehouse.read_table(table).to_pandas().set_index("name")["status"].to_dict()
    assert got == {"a": "ok", "b": "gone", "c": "ok"}


def test_a_merge_adds_a_new_nullable_column_at_the_end_and_older_rows_read_null(warehouse, table):
    """An owned table made by an older release gains a column its rows now carry (as
    `prediction_stats.principal` did) at the first merge that writes it."""
    old = pa.table({"name": ["a"], "version": [1], "status": ["ok"]})
    warehouse.merge(table, old, ["name", "version"])
    new = pa.table({"name": ["b"], "version": [1], "status": ["ok"], "owner": ["alice"]})

    assert warehouse.merge(table, new, ["name", "version"]).inserted == 1
    assert warehouse.column_names(table) == ["name", "version", "status", "owner"]
    got = {row["name"]: row["owner"] for row in warehouse.read_table(table).to_pylist()}
    assert got == {"a": None, "b": "alice"}
    # Once added, the column is an ordinary one: a merge of the old rows changes nothing.
    assert warehouse.merge(table, new, ["name", "version"]).changed == 0


def test_a_merge_refuses_a_new_column_that_may_not_be_null(warehouse, table):
    warehouse.merge(table, pa.table({"name": ["a"], "version": [1]}), ["name", "version"])
    schema = pa.schema(
        [pa.field("name", pa.string()), pa.field("version", pa.int64()),
         pa.field("owner", pa.string(), nullable=False)]
    )  # fmt: skip
    rows = pa.table({"name": ["b"], "version": [1], "owner": ["alice"]}, schema=schema)

    with pytest.raises(SchemaMismatch, match="must be nullable"):
        warehouse.merge(table, rows, ["name", "version"])
    assert warehouse.column_names(table) == ["name", "version"]
