"""What one predict job is billed in BigQuery, statement by statement, against the ideal.

The real `BigQueryWarehouse` runs a job's BigQuery side (plan, one read per shard, staging,
the landing, the cleanup) against strict fakes of the client libraries (`tests/gcp/fakes`)
that keep a model of the tables (rows, columns, partitions); every request is recorded and
priced with BigQuery's on-demand rules:

- Storage Read API: the bytes of the selected columns its streams read. The streams of one
  session split the rows; a session with a row restriction still scans every row.
- Queries and DML: the bytes of the columns each statement references in the tables it
  reads (only the partitions its filter keeps), at least 10 MB per table referenced; INSERT
  bills what it reads (q), DELETE also the whole table it changes (q + t), TRUNCATE nothing.
- Load jobs, copies, metadata calls: free.

The ideal is each byte the job must read, read once: the input's selected columns, and the
staged predictions once when they land. Target: billed / ideal <= 1.05 at every shard count.
Column sizes are BigQuery's logical ones (INT64/FLOAT64/TIMESTAMP 8 bytes, STRING 2 + length).

    uv run python bench/bigquery_cost.py [--rows 10000000] [--shards 1 8 64] [--verbose]
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field

import pyarrow as pa
from google.api_core import exceptions as gexc
from google.cloud import bigquery, bigquery_storage
from google.cloud.bigquery.table import Row

from mlsys.ids import TableId
from mlsys.predict.commit import commit_output
from mlsys.settings import Settings
from mlsys.warehouse import JobScope
from mlsys.warehouse.bigquery import BigQueryWarehouse
from mlsys.warehouse.bigquery.landing import stage_prefix
from tests.gcp.fakes import answer, strict

PROJECT = "bench-project"
INPUT = TableId(PROJECT, "data", "passengers")
OUTPUT = TableId(PROJECT, "data", "scores")
MB = 1 << 20
MIN_PER_TABLE = 10 * MB
JOB_ID = "job-0123456789abcdef0123456789abcdef"
#: Column -> (BigQuery type, logical bytes per value).
INPUT_COLUMNS = {
    "PassengerId": ("INT64", 8), "Pclass": ("INT64", 8), "Sex": ("STRING", 2 + 5),
    "Age": ("FLOAT64", 8), "SibSp": ("INT64", 8), "Parch": ("INT64", 8),
    "Fare": ("FLOAT64", 8), "Embarked": ("STRING", 2 + 1),
}  # fmt: skip
OUTPUT_COLUMNS = {
    "PassengerId": ("INT64", 8), "Survived": ("INT64", 8),
    "PredictionProbability": ("FLOAT64", 8), "PredictionTimestamp": ("TIMESTAMP", 8),
    "ModelName": ("STRING", 2 + 16), "ModelVersion": ("STRING", 2 + 2),
    "JobId": ("STRING", 2 + len(JOB_ID)),
}  # fmt: skip


@dataclass
class Table:
    columns: dict[str, tuple[str, int]]
    rows: int
    #: Rows in today's partition (what a `PredictionTimestamp >= @since` filter keeps).
    rows_today: int | None = None

    def width(self, names: list[str]) -> int:
        return sum(self.columns[n][1] for n in names)

    def meta(self, table: TableId) -> bigquery.Table:
        resource = {
            "tableReference": {
                "projectId": table.project, "datasetId": table.dataset, "tableId": table.table,
            },
            "schema": {"fields": [{"name": n, "type": t} for n, (t, _) in self.columns.items()]},
            "type": "TABLE",
            "numRows": str(self.rows),
        }  # fmt: skip
        if self.rows_today is not None:
            resource["timePartitioning"] = {"type": "DAY", "field": "PredictionTimestamp"}
            resource["clustering"] = {"fields": ["ModelName", "ModelVersion", "JobId"]}
        return bigquery.Table.from_api_repr(resource)


@dataclass
class World:
    """The tables the fakes answer about, and the bill of every request."""

    tables: dict[str, Table]
    rows_per_stream: list[int] = field(default_factory=list)
    bill: list[tuple[str, int]] = field(default_factory=list)

    def get_table(self, name, **_):
        found = self.tables.get(str(name))
        if found is None:
            raise gexc.NotFound(f"Table {name}")
        return found.meta(TableId.parse(str(name)))

    def query(self, sql: str, job_config=None, **_):
        self.bill.append((_label(sql), self.price(sql)))
        inserted = self.apply(sql)
        job = strict(bigquery.QueryJob)
        answer(job, "result", lambda **_: iter([Row((0,), {"n": 0})]))
        job.dml_stats = bigquery.DmlStats.from_api_repr({"insertedRowCount": str(inserted)})
        job.num_dml_affected_rows = inserted
        return job

    def price(self, sql: str) -> int:
        """On-demand bytes of one statement (see the module's docstring)."""
        if sql.startswith("BEGIN TRANSACTION"):
            return sum(self.price(part) for part in sql.split(";\n")[1:-1])
        if sql.startswith("TRUNCATE TABLE"):
            return 0
        target, body = None, sql
        if m := re.match(r"(?:INSERT INTO|CREATE (?:OR REPLACE )?TABLE) `([^`]+)`[^\n]*\n", sql):
            target, body = m[1], sql[m.end() :]
        total = 0
        for name in sorted(set(re.findall(r"(?:FROM|USING|JOIN) `([^`]+)`", body))):
            table = self.tables[name]
            referenced = [c for c in table.columns if f"`{c}`" in body]
            rows = table.rows
            if table.rows_today is not None and "@since" in body:
                rows = table.rows_today  # the other days' partitions are pruned
            total += max(MIN_PER_TABLE, rows * table.width(referenced))
        if sql.startswith("DELETE") and target:
            total += self.tables[target].rows * self.tables[target].width(
                list(self.tables[target].columns)
            )
        return total

    def apply(self, sql: str) -> int:
        """What a statement does to the model's rows; returns the rows it inserted."""
        # What the statement lands: the combined staging table, or every staging table.
        stage = {n: t for n, t in self.tables.items() if "_mlsys_stage_" in n}
        combined = [t for n, t in stage.items() if n.endswith("_all")]
        staged = combined[0].rows if combined else sum(t.rows for t in stage.values())
        if sql.startswith(("CREATE TABLE", "CREATE OR REPLACE TABLE")):
            self.tables[str(OUTPUT)] = Table(dict(OUTPUT_COLUMNS), staged, staged)
            return staged
        if sql.startswith("BEGIN TRANSACTION"):
            self.tables[str(OUTPUT)].rows = self.tables[str(OUTPUT)].rows_today = 0
        if "INSERT INTO" in sql:
            out = self.tables[str(OUTPUT)]
            out.rows += staged
            out.rows_today = (out.rows_today or 0) + staged
            return staged
        return 0

    def copy(self, sources, destination, job_config=None, **_):
        sources = sources if isinstance(sources, list) else [sources]
        rows = sum(self.tables[str(s)].rows for s in sources)
        self.tables[str(destination)] = Table(dict(OUTPUT_COLUMNS), rows)
        self.bill.append((f"copy job of {len(sources)} staging table(s) (free)", 0))
        return strict(bigquery.CopyJob, result=None)

    def create_read_session(self, parent, read_session, max_stream_count, **_):
        table = self.tables[_table_of(read_session.table)]
        selected = list(read_session.read_options.selected_fields)
        streams = max(1, max_stream_count)
        self.rows_per_stream = [table.rows // streams] * streams
        scanned = table.rows * table.width(selected)
        if read_session.read_options.row_restriction:  # filters after the scan
            self.bill.append(("Storage Read session (restricted: scans every row)", scanned))
        else:
            self.bill.append((f"Storage Read session, {streams} stream(s)", scanned))
        schema = pa.schema([(c, pa.int64()) for c in selected])
        return bigquery_storage.types.ReadSession(
            name=f"{parent}/locations/us/sessions/S",
            streams=[{"name": f"S/streams/{k}"} for k in range(streams)],
            arrow_schema={"serialized_schema": schema.serialize().to_pybytes()},
        )

    def load(self, source, destination, job_config=None, **_):
        self.tables[str(destination)] = Table(dict(OUTPUT_COLUMNS), 0)
        return strict(bigquery.LoadJob, result=None)


def _table_of(path: str) -> str:
    _, project, _, dataset, _, table = path.split("/")
    return f"{project}.{dataset}.{table}"


def _label(sql: str) -> str:
    first = " ".join(sql.split())
    first = re.sub(r"`[^`]*\._mlsys_stage_[^`]*`", "`<staging>`", first)
    first = re.sub(r"(`<staging>`)(?: UNION ALL SELECT [^`]* FROM `<staging>`)+", r"\1 ...", first)
    return first[:110]


def run_job(rows: int, shards: int, disposition: str, history: int) -> World:
    """Plan, read every shard, stage, land and clean up one job; returns the priced world."""
    world = World({str(INPUT): Table(dict(INPUT_COLUMNS), rows)})
    if history:  # earlier jobs' rows, on earlier days
        world.tables[str(OUTPUT)] = Table(dict(OUTPUT_COLUMNS), history, 0)
    client = strict(
        bigquery.Client,
        get_table=lambda *a, **k: world.get_table(*a, **k),
        get_dataset=bigquery.Dataset(f"{PROJECT}.mlsys_dev"),
        query=lambda *a, **k: world.query(*a, **k),
        load_table_from_file=lambda *a, **k: world.load(*a, **k),
        copy_table=lambda *a, **k: world.copy(*a, **k),
        update_table=lambda table, fields, **_: table,
        list_tables=lambda *_, **__: [],
        delete_table=lambda *_, **__: None,
    )
    read_client = strict(
        bigquery_storage.BigQueryReadClient,
        create_read_session=lambda *a, **k: world.create_read_session(*a, **k),
        read_rows=lambda stream, **_: iter(()),
    )
    settings = Settings(_env_file=None, GCP_PROJECT_ID=PROJECT)
    wh = BigQueryWarehouse(PROJECT, settings, client=client, read_client=read_client)
    scope = JobScope(JOB_ID, "dev")

    plan = wh.plan_read(INPUT, list(INPUT_COLUMNS), shards, scope)
    schema = pa.schema([(c, pa.int64()) for c in OUTPUT_COLUMNS])
    for shard, shard_rows in zip(plan.shards, world.rows_per_stream, strict=True):
        assert list(wh.read_shard(shard, 10_000)) == []  # the fake streams carry no bytes
        batch = pa.record_batch([pa.array([1], pa.int64())] * len(schema), schema=schema)
        wh.stage(scope, shard["index"], [batch], schema)
        staged = world.tables[f"{PROJECT}.mlsys_dev.{stage_prefix(scope)}{shard['index']}"]
        staged.rows = shard_rows
    commit_output(wh, scope, OUTPUT, len(plan.shards), disposition)
    wh.discard(scope)
    return world


def ideal(rows: int) -> int:
    input_bytes = rows * sum(size for _, size in INPUT_COLUMNS.values())
    output_bytes = rows * sum(size for _, size in OUTPUT_COLUMNS.values())
    return input_bytes + output_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument(
        "--history", type=int, default=100_000_000, help="rows already in the output"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="every statement at every shard count"
    )
    args = parser.parse_args()

    target = ideal(args.rows)
    print(f"{args.rows:,} input rows; ideal {target / MB:,.1f} MiB (input columns read once, "
          "predictions landed once); on-demand rules, estimated")  # fmt: skip
    for disposition, history in (("WRITE_APPEND", args.history), ("WRITE_EMPTY", 0),
                                 ("WRITE_TRUNCATE", args.history)):  # fmt: skip
        print(f"\n{disposition}" + (f" into an output of {history:,} earlier rows" if history else
                                    " into a new output"))  # fmt: skip
        for shards in args.shards:
            world = run_job(args.rows, shards, disposition, history)
            total = sum(b for _, b in world.bill)
            verdict = "ok" if total <= 1.05 * target else "MISSED"
            print(f"  {shards:>3} shard(s): {total / MB:>10,.1f} MiB billed = "
                  f"{total / target:.3f} x ideal (target <= 1.05: {verdict})")  # fmt: skip
            if args.verbose or shards == 8:
                for label, billed in world.bill:
                    print(f"      {billed / MB:>10,.1f} MiB  {label}")


if __name__ == "__main__":
    main()
