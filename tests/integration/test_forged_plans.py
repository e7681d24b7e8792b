"""A plan read back from a job record is not trusted as a path (attack: a job record forged in
Redis whose plan named a Parquet file outside the job's staging folder made a worker read it
and land its rows in an output table). Real DuckDB, real model store, the worker's own step."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlsys.errors import PermissionDenied
from mlsys.predict import plan_shards, prepare_predict, run_shard
from mlsys.predict.spec import PredictSpec
from tests.integration.jobs_support import INPUT, OUTPUT, make_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path, redis_client, redis_url):
    stack = make_stack(tmp_path, redis_url)
    stack.load_table(40)
    stack.register(version=1)
    return stack


def _prepared(stack):
    spec = PredictSpec.parse(
        settings=stack.settings,
        env="dev",
        input_table=str(INPUT),
        output_table=str(OUTPUT),
        model_name="scripted",
    )
    return prepare_predict(spec, stack.warehouse, stack.settings)


def _run(stack, prepared, shard, job_id):
    return run_shard(prepared, shard, 0, job_id, stack.warehouse, stack.store, stack.settings)


def test_a_shard_reads_only_its_own_jobs_staging(stack, tmp_path):
    prepared = _prepared(stack)
    own = "a" * 32
    (shard,) = plan_shards(prepared, stack.warehouse, stack.settings, own, shards=1).shards
    assert _run(stack, prepared, shard, own) == 40

    secret = tmp_path / "elsewhere.parquet"
    pq.write_table(pa.table({"PassengerId": [1]}), secret)
    link = stack.settings.staging_dir / ("b" * 32) / "input.parquet"
    link.parent.mkdir(parents=True)
    os.symlink(secret, link)
    forged = [
        {**shard, "path": str(secret)},  # a file anywhere
        {**shard, "path": str(stack.settings.staging_dir / own / ".." / ("b" * 32) / "x")},
        {**shard, "path": str(link)},  # another job's folder
        {**shard, "path": None},
    ]
    for bad in forged:
        with pytest.raises(PermissionDenied, match="outside the job's staging"):
            _run(stack, prepared, bad, "b" * 32 if bad["path"] == str(link) else own)
    # Another job's own snapshot is outside this job's staging too.
    with pytest.raises(PermissionDenied):
        _run(stack, prepared, shard, "c" * 32)
