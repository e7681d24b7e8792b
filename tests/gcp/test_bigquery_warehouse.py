"""BigQueryWarehouse through the real client libraries, against bqemulator.

The shared contract suite (tests/contract) runs on this backend too; these tests cover what is
particular to BigQuery: types through load jobs, read streams read from other processes,
where staging lives, and the env-var wiring of the emulators.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlsys.commit import commit_output
from mlsys.errors import InvalidRequest, SchemaMismatch, TableNotEmpty, TableNotFound
from mlsys.ids import TableId
from mlsys.settings import Settings
from mlsys.warehouse import JOB_ID_COLUMN, JobScope, open_warehouse
from mlsys.warehouse.bigquery import BigQueryWarehouse

pytestmark = pytest.mark.integration


@pytest.fixture
def wh(bigquery_warehouse) -> BigQueryWarehouse:
    return bigquery_warehouse


@pytest.fixture
def table(wh) -> TableId:
    return TableId(wh.default_project, "bqtests", f"t_{uuid.uuid4().hex[:10]}")


@pytest.fixture
def scope() -> JobScope:
    return JobScope(f"job-{uuid.uuid4().hex[:12]}", "dev")


def _output(n: int, job_id: str, start: int = 0) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(start, start + n), pa.int64()),
            "pred": pa.array([0.25] * n, pa.float64()),
            JOB_ID_COLUMN: pa.array([job_id] * n),
        }
    )


def _stage(wh, scope, index, table: pa.Table) -> int:
    return wh.stage(scope, index, iter(table.to_batches(max_chunksize=7)), table.schema)


def test_open_warehouse_reads_the_emulator_variables(bigquery_emulator, monkeypatch, table):
    for name, value in bigquery_emulator.env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None, GCP_PROJECT_ID=bigquery_emulator.project)
    warehouse = open_warehouse(f"bigquery://{bigquery_emulator.project}", settings)
    assert isinstance(warehouse, BigQueryWarehouse) and warehouse.emulated
    warehouse.write(pd.DataFrame({"a": [1, 2]}), table, "WRITE_APPEND")
    assert warehouse.read_table(table)["a"].to_pylist() == [1, 2]


def test_types_survive_a_load_job_with_an_explicit_schema(wh, table):
    frame = pd.DataFrame(
        {
            "n": np.arange(4, dtype="int32"),
            "x": [1.5, np.nan, None, 2.0],  # NaN and None are both NULL in a NULLABLE FLOAT64
            "s": ["a", None, "c", "d"],
            "empty": [None] * 4,  # all-NULL object column: STRING, not a load error
            "flag": [True, False, True, False],
            "at": pd.Timestamp("2024-05-01 12:00", tz="UTC"),
            "day": [dt.date(2024, 5, d) for d in range(1, 5)],
        }
    )
    assert wh.write(frame, table, "WRITE_APPEND") == 4
    assert wh.schema(table) == pa.schema(
        {
            "n": pa.int64(),
            "x": pa.float64(),
            "s": pa.string(),
            "empty": pa.string(),
            "flag": pa.bool_(),
            "at": pa.timestamp("us", tz="UTC"),
            "day": pa.date32(),
        }
    )
    got = wh.read_table(table).to_pandas().sort_values("n")
    assert got["x"].isna().tolist() == [False, True, True, False]
    assert got["empty"].isna().all()
    assert got["at"].iloc[0] == pd.Timestamp("2024-05-01 12:00", tz="UTC")


def test_append_takes_the_table_types_and_refuses_new_ones(wh, table):
    wh.write(pa.table({"a": pa.array([1.5]), "b": ["x"]}), table, "WRITE_APPEND")
    # An untyped all-NULL column and an integer into FLOAT64 are fine...
    wh.write(pd.DataFrame({"a": [2], "b": [None]}), table, "WRITE_APPEND")
    assert wh.count_rows(table) == 2
    # ...a string into FLOAT64 is not.
    with pytest.raises(SchemaMismatch):
        wh.write(pd.DataFrame({"a": ["three"]}), table, "WRITE_APPEND")


def test_projection_keeps_the_requested_order_and_an_empty_table_plans_one_shard(wh, table, scope):
    wh.write(pd.DataFrame({"a": [1], "b": ["x"], "c": [0.5]}), table, "WRITE_APPEND")
    plan = wh.plan_read(table, ["c", "a"], 4, scope)
    assert [b.schema.names for s in plan.shards for b in wh.read_shard(s, 10)] == [["c", "a"]]

    empty = table.with_table(table.table + "_empty")
    wh.write(pd.DataFrame({"a": pd.Series([], dtype="int64")}), empty, "WRITE_APPEND")
    plan = wh.plan_read(empty, ["a"], 4, scope)
    assert plan.rows_total == 0 and len(plan.shards) == 1
    assert list(wh.read_shard(plan.shards[0], 10)) == []
    assert wh.read_table(empty).schema == pa.schema({"a": pa.int64()})


def _count_shard(args) -> int:
    env, shard = args
    import os

    os.environ.update(env)
    warehouse = BigQueryWarehouse("mlsys-test", Settings(_env_file=None))
    return sum(batch.num_rows for batch in warehouse.read_shard(json.loads(shard), 1000))


def test_streams_are_read_by_other_processes(wh, table, scope, bigquery_emulator):
    # Real BigQuery and bqemulator give a table under ~1 MB one stream, whatever was asked.
    wh.write(pd.DataFrame({"id": np.arange(200_000)}), table, "WRITE_APPEND")
    plan = wh.plan_read(table, ["id"], 4, scope)
    assert len(plan.shards) == 4
    jobs = [(bigquery_emulator.env, json.dumps(shard)) for shard in plan.shards]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert sum(pool.map(_count_shard, jobs)) == 200_000


def test_staging_lives_in_the_env_dataset_and_discard_drops_only_it(wh, scope):
    dataset = f"{wh.settings.gcp_project_id}.mlsys_dev"
    keep = TableId(wh.settings.gcp_project_id, "mlsys_dev", f"keep_{uuid.uuid4().hex[:8]}")
    wh.write(pd.DataFrame({"a": [1]}), keep, "WRITE_APPEND")
    assert _stage(wh, scope, 0, _output(20, scope.job_id)) == 20
    assert _stage(wh, scope, 1, _output(0, scope.job_id)) == 0  # an empty shard still counts
    names = {t.table_id for t in wh.client.list_tables(dataset)}
    prefix = f"_mlsys_stage_{scope.job_id.replace('-', '_')}_"
    assert {f"{prefix}0", f"{prefix}1"} <= names
    assert wh.staged_shards(scope) == {0, 1}

    wh.discard(scope)
    assert wh.staged_shards(scope) == set()
    assert wh.exists(keep)


def test_commit_creates_the_target_and_knows_a_landed_job_after_discard(wh, table, scope):
    _stage(wh, scope, 0, _output(10, scope.job_id))
    _stage(wh, scope, 1, _output(5, scope.job_id, start=10))
    first = commit_output(wh, scope, table, 2, "WRITE_EMPTY")
    assert (first.rows, first.already_committed) == (15, False)
    wh.discard(scope)
    # A redelivered commit after the staging is gone still knows the job landed.
    again = commit_output(wh, scope, table, 2, "WRITE_APPEND")
    assert again.already_committed and again.rows == 15
    assert wh.count_rows(table) == 15


def test_commit_write_empty_refuses_rows_and_truncate_replaces_a_foreign_table(wh, table):
    wh.write(pd.DataFrame({"other": ["x", "y"]}), table, "WRITE_APPEND")
    scope = JobScope(f"job-{uuid.uuid4().hex[:8]}", "dev")
    _stage(wh, scope, 0, _output(3, scope.job_id))
    with pytest.raises(SchemaMismatch):
        commit_output(wh, scope, table, 1, "WRITE_APPEND")
    assert commit_output(wh, scope, table, 1, "WRITE_TRUNCATE").rows == 3
    assert wh.schema(table).names == ["id", "pred", JOB_ID_COLUMN]

    later = JobScope(f"job-{uuid.uuid4().hex[:8]}", "dev")
    _stage(wh, later, 0, _output(3, later.job_id))
    with pytest.raises(TableNotEmpty):
        commit_output(wh, later, table, 1, "WRITE_EMPTY")
    with pytest.raises(InvalidRequest):
        commit_output(wh, later, table, 2, "WRITE_APPEND")  # shard 1 was never staged
    assert wh.count_rows(table) == 3


@pytest.mark.googlesql_rejected  # "SELEC 1"
def test_query_errors_are_typed(wh, table):
    with pytest.raises(TableNotFound):
        wh.read_table(table)
    with pytest.raises(InvalidRequest):
        wh.query("SELEC 1")
    assert not wh.exists(table)


def _predictions(n: int, job_id: str) -> pa.Table:
    now = dt.datetime.now(dt.UTC)
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "PredictionTimestamp": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
            JOB_ID_COLUMN: pa.array([job_id] * n),
        }
    )


def _partitioned(wh, table) -> None:
    """An output table as a data team makes it: partitioned, clustered, described."""
    from google.cloud import bigquery

    wh.tables.ensure_dataset(table.project, table.dataset)
    meta = bigquery.Table(
        str(table),
        [
            bigquery.SchemaField("id", "INT64"),
            bigquery.SchemaField("PredictionTimestamp", "TIMESTAMP"),
            bigquery.SchemaField(JOB_ID_COLUMN, "STRING"),
        ],
    )
    meta.time_partitioning = bigquery.TimePartitioning(field="PredictionTimestamp")
    meta.clustering_fields = [JOB_ID_COLUMN]
    meta.description = "Scores of the nightly job"
    wh.client.create_table(meta)


@pytest.mark.parametrize("disposition", ["WRITE_APPEND", "WRITE_EMPTY", "WRITE_TRUNCATE"])
def test_every_disposition_keeps_a_partitioned_clustered_table(wh, table, disposition):
    _partitioned(wh, table)
    if disposition != "WRITE_EMPTY":
        earlier = JobScope(f"job-{uuid.uuid4().hex[:8]}", "dev")
        _stage(wh, earlier, 0, _predictions(4, earlier.job_id))
        commit_output(wh, earlier, table, 1, "WRITE_APPEND")
    scope = JobScope(f"job-{uuid.uuid4().hex[:8]}", "dev")
    _stage(wh, scope, 0, _predictions(3, scope.job_id))

    assert commit_output(wh, scope, table, 1, disposition).rows == 3
    again = commit_output(wh, scope, table, 1, disposition)  # a redelivered commit
    assert again.already_committed and again.rows == 3

    expected = {"WRITE_APPEND": 7, "WRITE_EMPTY": 3, "WRITE_TRUNCATE": 3}[disposition]
    assert wh.count_rows(table) == expected
    meta = wh.client.get_table(str(table))
    assert meta.description == "Scores of the nightly job"  # the same table, not a new one
    assert [f.name for f in meta.schema] == ["id", "PredictionTimestamp", JOB_ID_COLUMN]


def test_a_shard_larger_than_one_spool_is_loaded_in_parts_and_appears_whole(wh, table, scope):
    wh.output.spool_bytes = 1  # every batch fills a spool: bounded local memory on Cloud Run
    output = _output(40, scope.job_id)

    assert _stage(wh, scope, 0, output) == 40  # six batches of at most 7 rows
    assert wh.staged_shards(scope) == {0}
    listed = {t.table for t in wh.tables.list(wh.project, "mlsys_dev")}
    assert not any(name.endswith("_partial") for name in listed if scope.job_id[4:] in name)
    assert commit_output(wh, scope, table, 1, "WRITE_APPEND").rows == 40
    assert sorted(wh.read_table(table, ["id"]).column("id").to_pylist()) == list(range(40))
