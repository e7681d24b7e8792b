"""BigQuery I/O against bqemulator: rows/s of the read and write paths, and API round trips.

Figures only: the emulator is DuckDB behind BigQuery's wire protocols on this machine, not
BigQuery, so these show the client-side cost of the code path (Arrow decoding, Parquet
spooling, request counts), not BigQuery's own speed.

- read:  `plan_read` with 1 and 4 streams, every stream read by its own thread (threads, not
         worker processes: decoding releases the GIL, and process start-up would dominate).
- write: `stage` of the table's rows split into 1 and 4 shards (one thread each), then
         `commit` into a fresh output table.
- round trips of one job over a table of --rows rows with 4 shards (plan, read every shard,
         stage every shard, commit, discard): HTTP requests to the REST API, counted on the
         client's session, and gRPC calls to the Storage Read API, counted by an interceptor.

    tests/gcp/emulators/install                     # once: bqemulator in its own venv
    uv run python bench/bigquery_io.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pyarrow as pa
from google.cloud import bigquery_storage
from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
    BigQueryReadGrpcTransport,
)

from mlsys import datasets
from mlsys.ids import TableId
from mlsys.predict.commit import commit_output
from mlsys.settings import Settings
from mlsys.warehouse import JOB_ID_COLUMN, JobScope
from mlsys.warehouse.bigquery import BigQueryWarehouse
from tests.gcp.emulators.servers import bqemulator_python, start_bqemulator

COLUMNS = ["PassengerId", "Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]


class _CountRpcs(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    def intercept_unary_unary(self, continuation, details, request):
        self.calls[details.method.rsplit("/", 1)[-1]] += 1
        return continuation(details, request)

    def intercept_unary_stream(self, continuation, details, request):
        self.calls[details.method.rsplit("/", 1)[-1]] += 1
        return continuation(details, request)


def _count_http(warehouse: BigQueryWarehouse) -> collections.Counter[str]:
    """Count REST requests by method and resource kind (ids folded away)."""
    counter: collections.Counter[str] = collections.Counter()
    session = warehouse.client._http
    send = session.request

    def counting(method, url, *args, **kwargs):
        path = re.sub(r"^https?://[^/]+", "", url).split("?")[0]
        path = re.sub(r"/(projects|datasets|tables|jobs|queries)/[^/]+", r"/\1/*", path)
        counter[f"{method} {path}"] += 1
        return send(method, url, *args, **kwargs)

    session.request = counting
    return counter


def _warehouse(emulator, rpcs: _CountRpcs) -> BigQueryWarehouse:
    channel = grpc.intercept_channel(
        grpc.insecure_channel(
            emulator.grpc_host, options=[("grpc.max_receive_message_length", -1)]
        ),
        rpcs,
    )
    read_client = bigquery_storage.BigQueryReadClient(
        transport=BigQueryReadGrpcTransport(channel=channel)
    )
    settings = Settings(_env_file=None, GCP_PROJECT_ID=emulator.project)
    return BigQueryWarehouse(emulator.project, settings, read_client=read_client, emulated=True)


def _read_all(wh, plan, batch_rows: int) -> int:
    def one(shard):
        return sum(b.num_rows for b in wh.read_shard(shard, batch_rows))

    with ThreadPoolExecutor(len(plan.shards)) as pool:
        return sum(pool.map(one, plan.shards))


def _stage_all(wh, scope, table: pa.Table, shards: int) -> int:
    table = table.append_column(JOB_ID_COLUMN, pa.array([scope.job_id] * table.num_rows))
    size = -(-table.num_rows // shards)
    parts = [table.slice(i * size, size) for i in range(shards)]

    def one(index: int) -> int:
        part = parts[index]
        return wh.stage(scope, index, iter(part.to_batches(100_000)), part.schema)

    with ThreadPoolExecutor(shards) as pool:
        return sum(pool.map(one, range(shards)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    args = parser.parse_args()
    if not bqemulator_python().exists():
        sys.exit("bqemulator is not installed: run tests/gcp/emulators/install")

    proc, emulator = start_bqemulator(Path(tempfile.mkdtemp()) / "bqemulator.log")
    try:
        os.environ.update(emulator.env)
        rpcs = _CountRpcs()
        wh = _warehouse(emulator, rpcs)
        source = TableId(emulator.project, "bench", f"passengers_{args.rows}")
        started = time.perf_counter()
        datasets.write_titanic(wh, source, args.rows)
        print(f"setup: {args.rows:,} rows written with load jobs in "
              f"{time.perf_counter() - started:.1f}s")  # fmt: skip
        data = wh.read_table(source, COLUMNS)

        print(f"\n{'path':<7}{'streams':>8}{'rows':>12}{'seconds':>9}{'rows/s':>12}")
        for streams in (1, 4):
            scope = JobScope(f"bench-read-{uuid.uuid4().hex[:8]}", "dev")
            started = time.perf_counter()
            plan = wh.plan_read(source, COLUMNS, streams, scope)
            rows = _read_all(wh, plan, args.batch_rows)
            took = time.perf_counter() - started
            print(f"{'read':<7}{len(plan.shards):>8}{rows:>12,}{took:>9.2f}{rows / took:>12,.0f}")
        for streams in (1, 4):
            scope = JobScope(f"bench-write-{uuid.uuid4().hex[:8]}", "dev")
            target = source.with_table(f"out_{uuid.uuid4().hex[:8]}")
            started = time.perf_counter()
            rows = _stage_all(wh, scope, data, streams)
            commit_output(wh, scope, target, streams, "WRITE_APPEND")
            took = time.perf_counter() - started
            wh.discard(scope)
            print(f"{'write':<7}{streams:>8}{rows:>12,}{took:>9.2f}{rows / took:>12,.0f}")

        # One whole job, counted: a fresh warehouse, as a worker process would have.
        rpcs = _CountRpcs()
        wh = _warehouse(emulator, rpcs)
        http = _count_http(wh)
        scope = JobScope(f"bench-job-{uuid.uuid4().hex[:8]}", "dev")
        plan = wh.plan_read(source, COLUMNS, 4, scope)
        for index, shard in enumerate(plan.shards):
            batches = (
                b.append_column(JOB_ID_COLUMN, pa.array([scope.job_id] * b.num_rows))
                for b in wh.read_shard(shard, args.batch_rows)
            )
            schema = data.schema.append(pa.field(JOB_ID_COLUMN, pa.string()))
            wh.stage(scope, index, batches, schema)
        output = source.with_table(f"job_{uuid.uuid4().hex[:8]}")
        result = commit_output(wh, scope, output, len(plan.shards), "WRITE_APPEND")
        wh.discard(scope)
        print(f"\nround trips of one {result.rows:,}-row job, {len(plan.shards)} shards "
              f"(plan, read, stage, commit, discard):")  # fmt: skip
        print(f"  REST requests: {sum(http.values())}")
        for key, count in sorted(http.items(), key=lambda kv: -kv[1]):
            print(f"    {count:>4}  {key}")
        print(f"  Storage Read gRPC calls: {sum(rpcs.calls.values())}")
        for key, count in sorted(rpcs.calls.items()):
            print(f"    {count:>4}  {key}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
