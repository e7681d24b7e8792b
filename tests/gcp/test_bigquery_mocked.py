"""What bqemulator cannot show, through strict fakes of the real clients (`tests/gcp/fakes`):
an unknown attribute, a call the real signature refuses, or any call a test did not script
fails the test, and scripted calls answer with real client objects.

Each test names the emulator gap it covers: table expiration (ignored), DML statistics (not
reported), query results through the Storage Read API (not served), exact row counts from table
metadata (not kept after DML), and cloud failures (permission, quota, outage) that a local
server does not produce. The `emulated` branches these production paths replace against
bqemulator are run here too, and for real by the emulator suites.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pytest
import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, bigquery_storage
from google.cloud.bigquery.table import Row

from mlsys.commit import commit_output
from mlsys.errors import (
    BackendUnavailable,
    InvalidRequest,
    PermissionDenied,
    SchemaMismatch,
    TableNotFound,
)
from mlsys.ids import TableId
from mlsys.settings import Settings
from mlsys.warehouse import JOB_ID_COLUMN, JobScope, bq_sql
from mlsys.warehouse.bigquery import BigQueryWarehouse
from tests.gcp.fakes import UnscriptedCall, answer, strict

pytestmark = pytest.mark.unit

PROJECT = "mlsys-test"
TABLE = TableId(PROJECT, "d", "t")


@pytest.fixture
def client():
    return strict(bigquery.Client, get_dataset=bigquery.Dataset(f"{PROJECT}.mlsys_dev"))


@pytest.fixture
def read_client():
    return strict(bigquery_storage.BigQueryReadClient)


def _warehouse(client, read_client, emulated: bool) -> BigQueryWarehouse:
    settings = Settings(_env_file=None, GCP_PROJECT_ID=PROJECT)
    warehouse = BigQueryWarehouse(
        PROJECT, settings, client=client, read_client=read_client, emulated=emulated
    )
    warehouse.tables.sleep = lambda seconds: None  # retries back off without waiting here
    return warehouse


@pytest.fixture
def wh(client, read_client) -> BigQueryWarehouse:
    """The production paths (real BigQuery)."""
    return _warehouse(client, read_client, emulated=False)


def _table(table: TableId, fields: dict[str, str], rows: int | None = None, kind="TABLE"):
    """A real `bigquery.Table` as GET tables answers it."""
    resource = {
        "tableReference": {
            "projectId": table.project,
            "datasetId": table.dataset,
            "tableId": table.table,
        },
        "schema": {"fields": [{"name": n, "type": t} for n, t in fields.items()]},
        "type": kind,
    }
    if rows is not None:
        resource["numRows"] = str(rows)
    return bigquery.Table.from_api_repr(resource)


def _query_job(rows: list[tuple] = (), dml: dict | None = None, **script):
    """A strict QueryJob whose result() yields `rows` (real Rows) and whose DML statistics
    are `dml` (as the API reports them) or absent."""
    job = strict(bigquery.QueryJob, **script)
    answer(job, "result", lambda **_: iter([Row(r, {"n": 0}) for r in rows]))
    job.dml_stats = bigquery.DmlStats.from_api_repr(dml) if dml is not None else None
    job.num_dml_affected_rows = None
    return job


def _load_job():
    return strict(bigquery.LoadJob, result=None)


def test_the_fakes_refuse_what_the_real_clients_would(client, read_client):
    job = _query_job()
    answer(client, "query", job)

    with pytest.raises(AttributeError):
        client.query("SELECT 1").totally_made_up_method  # noqa: B018
    with pytest.raises(TypeError):
        job.to_arrow(bogus=1)
    with pytest.raises(TypeError):
        client.get_table()  # the real signature needs a table
    with pytest.raises(UnscriptedCall, match="update_table"):
        client.update_table(bigquery.Table(f"{PROJECT}.d.t"), ["expires"])
    with pytest.raises(UnscriptedCall, match="read_rows"):
        read_client.read_rows("s/0")


def test_staging_tables_expire_on_their_own(wh, client):
    # bqemulator accepts `expires` and drops it, so the PATCH is checked here.
    scope = JobScope("job-1", "dev")
    schema = pa.schema({"id": pa.int64(), JOB_ID_COLUMN: pa.string()})
    batch = pa.record_batch({"id": [1, 2], JOB_ID_COLUMN: ["job-1"] * 2}, schema=schema)
    before = dt.datetime.now(dt.UTC)
    answer(client, "load_table_from_file", _load_job())
    answer(client, "update_table", lambda table, fields, **_: table)

    assert wh.stage(scope, 3, [batch], schema) == 2

    load = client.load_table_from_file.call_args
    assert load.args[1] == f"{PROJECT}.mlsys_dev._mlsys_stage_job_1_3"
    assert load.kwargs["job_config"].write_disposition == "WRITE_TRUNCATE"
    assert [f.field_type for f in load.kwargs["job_config"].schema] == ["INT64", "STRING"]
    table, fields = client.update_table.call_args.args
    assert fields == ["expires"] and table.reference.table_id == "_mlsys_stage_job_1_3"
    assert before + dt.timedelta(days=2) <= table.expires <= before + dt.timedelta(days=2, hours=1)


def _script_merge(client, *jobs) -> None:
    """What a MERGE into TABLE asks of the client: the target's metadata, a temporary source
    table created, loaded and dropped, and the query jobs `jobs` in order."""
    answer(client, "get_table", lambda ref, **_: _table(TABLE, {"k": "STRING", "v": "INT64"}))
    answer(client, "create_table", lambda table, **_: table)
    answer(client, "load_table_from_file", _load_job())
    answer(client, "delete_table", None)
    answer(client, "query", lambda *_, **__: queued.pop(0))
    queued = list(jobs)


ROWS = pa.table({"k": ["a", "b", "c"], "v": [1, 2, 3]})


def test_merge_reads_dml_statistics_without_a_second_query(wh, client):
    # bqemulator reports no dmlStats, so against it the warehouse counts new keys first.
    _script_merge(client, _query_job(dml={"insertedRowCount": "2", "updatedRowCount": "1"}))

    result = wh.merge(TABLE, ROWS, ["k"])

    assert (result.inserted, result.updated) == (2, 1)
    (sql,), _ = client.query.call_args
    assert sql.startswith(f"MERGE `{PROJECT}.d.t` AS T") and client.query.call_count == 1
    assert "T.`v` IS DISTINCT FROM S.`v`" in sql
    (dropped,), _ = client.delete_table.call_args
    assert dropped.startswith(f"{PROJECT}.d._mlsys_merge_t_")  # the temporary source


def test_merge_on_the_emulator_counts_new_keys_first(client, read_client):
    wh = _warehouse(client, read_client, emulated=True)
    counted = _query_job(rows=[(2,)])
    merged = _query_job()
    merged.num_dml_affected_rows = 3  # all bqemulator reports: inserted + updated
    _script_merge(client, counted, merged)

    result = wh.merge(TABLE, ROWS, ["k"])

    assert (result.inserted, result.updated) == (2, 1)
    first, second = (c.args[0] for c in client.query.call_args_list)
    assert "COUNT" in first.upper() and second.startswith("MERGE")


def _concurrent_update() -> gexc.BadRequest:
    """How BigQuery aborts one of two changes of a table at once (its job's error)."""
    message = f"Could not serialize access to table {PROJECT}:d.t due to concurrent update"
    return gexc.BadRequest(message, errors=[{"reason": "invalidQuery", "message": message}])


@pytest.mark.parametrize("added_meanwhile", [True, False], ids=["by-another-job", "by-no-one"])
def test_a_column_two_first_merges_add_at_once_is_added_once(wh, client, added_meanwhile):
    """Two jobs' first writes after an upgrade both find the column missing; BigQuery aborts
    one ALTER TABLE. The loser goes on when the winner added the column, and fails otherwise."""
    older = _table(TABLE, {"k": "STRING", "v": "INT64"})
    newer = _table(TABLE, {"k": "STRING", "v": "INT64", "w": "STRING"})
    reads = [older, newer if added_meanwhile else older]
    altered = _query_job()
    answer(altered, "result", _concurrent_update())
    _script_merge(client, altered, _query_job(dml={"insertedRowCount": "3"}))
    answer(client, "get_table", lambda ref, **_: reads.pop(0))
    rows = ROWS.append_column("w", pa.array(["x", "y", "z"]))

    if added_meanwhile:
        assert wh.merge(TABLE, rows, ["k"]).inserted == 3
    else:
        with pytest.raises(InvalidRequest, match="concurrent update"):
            wh.merge(TABLE, rows, ["k"])
    first = client.query.call_args_list[0].args[0]
    assert first == f"ALTER TABLE `{PROJECT}.d.t` ADD COLUMN IF NOT EXISTS `w` STRING"
    assert client.query.call_count == (2 if added_meanwhile else 1)


@pytest.mark.parametrize("emulated", [False, True], ids=["bigquery", "bqemulator"])
def test_query_results_come_through_the_storage_read_api(client, read_client, emulated):
    # bqemulator serves the Storage Read API for tables only, not for query results: there
    # the results come over REST.
    wh = _warehouse(client, read_client, emulated)
    job = _query_job(to_arrow=pa.table({"n": pa.array([1, 2], pa.int64())}))
    answer(client, "query", job)

    frame = wh.query("SELECT n FROM UNNEST([1, 2]) AS n")

    assert frame.to_dict("list") == {"n": [1, 2]}
    job.to_arrow.assert_called_once_with(
        bqstorage_client=None if emulated else read_client, create_bqstorage_client=False
    )
    assert client.query.call_args.args == ("SELECT n FROM UNNEST([1, 2]) AS n",)


@pytest.mark.parametrize("emulated", [False, True], ids=["bigquery", "bqemulator"])
def test_row_counts_come_from_table_metadata_except_on_the_emulator(client, read_client, emulated):
    # bqemulator does not update numRows after DML, so there the rows are counted by a query.
    wh = _warehouse(client, read_client, emulated)
    answer(client, "get_table", _table(TABLE, {"a": "INT64"}, rows=9))
    answer(client, "query", _query_job(rows=[(7,)]))

    assert wh.count_rows(TABLE) == (7 if emulated else 9)
    assert client.query.call_count == (1 if emulated else 0)


def test_a_view_is_counted_by_a_query(wh, client):
    answer(client, "get_table", _table(TABLE, {"a": "INT64"}, kind="VIEW"))
    answer(client, "query", _query_job(rows=[(4,)]))

    assert wh.count_rows(TABLE) == 4
    (sql,), _ = client.query.call_args
    assert sql == bq_sql.count_rows(TABLE)


@pytest.mark.parametrize(
    ("exc", "mapped"),
    [
        (gexc.NotFound("Not found: Table"), TableNotFound),
        (gexc.BadRequest("Syntax error"), InvalidRequest),
        (gexc.Forbidden("Access Denied"), PermissionDenied),
        (gexc.Forbidden("Quota", errors=[{"reason": "rateLimitExceeded"}]), BackendUnavailable),
        (gexc.ServiceUnavailable("backend"), BackendUnavailable),
        (gexc.RetryError("Timeout of 600s exceeded", cause=None), BackendUnavailable),
        (requests.ConnectionError("refused"), BackendUnavailable),
        (auth_exc.DefaultCredentialsError("no ADC"), PermissionDenied),
    ],
)
def test_failures_map_to_the_same_errors_as_duckdb(wh, client, exc, mapped):
    answer(client, "query", exc)
    with pytest.raises(mapped):
        wh.query("SELECT 1")


class _ScriptedHttp(requests.Session):
    """An HTTP session answering from a script, counting requests."""

    is_mtls = False

    def __init__(self, *responses: tuple[int, bytes]) -> None:
        super().__init__()
        self.responses = list(responses)
        self.calls = 0

    def request(self, method, url, **kwargs):
        self.calls += 1
        response = requests.Response()
        response.status_code, response._content = self.responses.pop(0)
        response.headers["content-type"] = "application/json"
        response.request = requests.Request(method, url).prepare()
        return response


def test_transient_errors_are_retried_with_backoff():
    # A real client on a scripted HTTP session: the first GET answers 503, the retry succeeds.
    http = _ScriptedHttp(
        (503, b'{"error": {"message": "try later"}}'),
        (200, b'{"tableReference": {"projectId": "mlsys-test", "datasetId": "d", "tableId": "t"}}'),
    )
    client = bigquery.Client(PROJECT, credentials=AnonymousCredentials(), _http=http)
    wh = BigQueryWarehouse(PROJECT, Settings(_env_file=None), client=client, emulated=False)

    assert wh.exists(TABLE)
    assert http.calls == 2


def test_write_sends_an_explicit_schema_never_autodetect(wh, client):
    answer(client, "get_table", gexc.NotFound("no table"))
    answer(client, "load_table_from_file", _load_job())
    frame = pd.DataFrame({"x": [1.0, float("nan")], "none": [None, None]})
    assert wh.write(frame, TABLE, "WRITE_APPEND") == 2
    assert client.load_table_from_file.call_args.args[1] == str(TABLE)
    config = client.load_table_from_file.call_args.kwargs["job_config"]
    assert config.source_format == "PARQUET" and not config.autodetect
    assert [(f.name, f.field_type, f.mode) for f in config.schema] == [
        ("x", "FLOAT64", "NULLABLE"),
        ("none", "STRING", "NULLABLE"),
    ]


def test_missing_gcp_extra_says_how_to_install_it():
    code = (
        "import sys; sys.modules['google.cloud.bigquery'] = None\n"
        "from mlsys.errors import MissingExtra\n"
        "try:\n    import mlsys.warehouse.bigquery\n"
        "except MissingExtra as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "install mlsys[gcp]" in out.stdout


# --- read sessions per shard -------------------------------------------------------------


def _session(*streams: str):
    """A real ReadSession as create_read_session answers it (its streams, maybe none)."""
    schema = pa.schema({"a": pa.int64()})
    return bigquery_storage.types.ReadSession(
        name="projects/mlsys-test/locations/us/sessions/S",
        streams=[{"name": name} for name in streams],
        arrow_schema={"serialized_schema": schema.serialize().to_pybytes()},
        expire_time=dt.datetime.now(dt.UTC) + dt.timedelta(hours=6),
    )


def _messages(values: list[int]):
    batch = pa.record_batch({"a": pa.array(values, pa.int64())})
    yield bigquery_storage.types.ReadRowsResponse(
        row_count=len(values),
        arrow_record_batch={"serialized_record_batch": batch.serialize().to_pybytes()},
    )


def _in_turn(*answers):
    """A side effect answering `answers` one per call (raising the exceptions among them)."""
    queued = list(answers)

    def next_answer(*_, **__):
        value = queued.pop(0)
        if isinstance(value, BaseException):
            raise value
        return value

    return next_answer


# What the Storage Read API answers on a stream whose session is past its 6 hours.
EXPIRED = gexc.FailedPrecondition(
    "there was an error operating on 'projects/mlsys-test/locations/us/sessions/CAISDE/"
    "streams/GgJ': session expired at 2026-11-30T10:00:00+00:00"
)


def _plan(wh, client, shards: int, rows: int = 9):
    answer(client, "get_table", _table(TABLE, {"a": "INT64"}, rows=rows))
    return wh.plan_read(TABLE, ["a"], shards, JobScope("job-1", "dev"))


def test_a_job_reads_its_columns_once_through_one_session_with_a_stream_per_shard(
    wh, client, read_client
):
    # A session per shard, each restricted to its rows, would be billed the whole table's
    # columns every time: one session's streams split the rows and read them once.
    answer(read_client, "create_read_session", _session("s/0", "s/1", "s/2"))
    plan = _plan(wh, client, 3)

    assert plan.rows_total == 9 and [s["stream"] for s in plan.shards] == ["s/0", "s/1", "s/2"]
    kwargs = read_client.create_read_session.call_args.kwargs
    assert kwargs["max_stream_count"] == 3
    options = kwargs["read_session"].read_options
    assert list(options.selected_fields) == ["a"] and options.row_restriction == ""

    answer(read_client, "read_rows", lambda stream, **_: _messages([4, 5]))
    assert [b.to_pydict() for b in wh.read_shard(plan.shards[1], 10)] == [{"a": [4, 5]}]
    assert [c.args[0] for c in read_client.read_rows.call_args_list] == ["s/1"]
    assert read_client.create_read_session.call_count == 1  # a shard opens nothing


def test_a_plan_has_as_many_shards_as_the_session_has_streams(wh, client, read_client):
    answer(read_client, "create_read_session", _session("s/0"))  # a small table: one stream

    plan = _plan(wh, client, 8)

    assert [(s["index"], s["count"], s["stream"]) for s in plan.shards] == [(0, 1, "s/0")]


def test_an_empty_table_is_planned_without_a_session(wh, client, read_client):
    plan = _plan(wh, client, 4, rows=0)  # the strict read client refuses any call

    assert plan.rows_total == 0 and len(plan.shards) == 1
    assert list(wh.read_shard(plan.shards[0], 10)) == []


def test_a_shard_planned_by_the_previous_version_is_refused_not_read_as_empty(wh):
    # Then each shard opened its own session: its plan has a snapshot time, no stream.
    old = {"table": str(TABLE), "columns": ["a"], "snapshot": "2026-01-01T00:00:00+00:00",
           "index": 1, "count": 4}  # fmt: skip
    with pytest.raises(InvalidRequest, match="earlier version") as raised:
        list(wh.read_shard(old, 10))
    assert "again" in raised.value.hint


def test_a_shard_whose_session_expired_fails_the_job_and_says_why(wh, client, read_client):
    answer(read_client, "create_read_session", _session("s/0", "s/1"))
    plan = _plan(wh, client, 2)
    answer(read_client, "read_rows", EXPIRED)

    with pytest.raises(InvalidRequest, match="read session .* expired") as raised:
        list(wh.read_shard(plan.shards[1], 10))
    assert "again" in raised.value.hint


# --- partitioned outputs ---------------------------------------------------------------------

OUT = {"id": "INT64", "PredictionTimestamp": "TIMESTAMP", JOB_ID_COLUMN: "STRING"}
STAGED = TableId(PROJECT, "mlsys_dev", "_mlsys_stage_job_1_0")


def test_landed_check_passes_the_job_and_a_time_bound_as_typed_parameters(wh, client):
    answer(client, "get_table", _table(TABLE, OUT))
    answer(client, "query", _query_job(rows=[(5,)]))
    before = dt.datetime.now(dt.UTC)

    result = commit_output(wh, JobScope("job-1", "dev"), TABLE, 1, "WRITE_APPEND")

    assert result.already_committed and result.rows == 5
    (sql,), kwargs = client.query.call_args
    assert sql.endswith("WHERE `JobId` = @job_id AND `PredictionTimestamp` >= @since")
    params = {p.name: p for p in kwargs["job_config"].query_parameters}
    assert params["job_id"].type_ == "STRING" and params["job_id"].value == "job-1"
    assert params["since"].type_ == "TIMESTAMP"
    # Staging lives two days, a commit can come 3 task time limits later: no further back.
    assert before - params["since"].value <= dt.timedelta(days=2, hours=18, minutes=1)


def _partitioned(fields: dict[str, str], field: str | None, clustering=None, description=None):
    table = _table(TABLE, fields)
    table.time_partitioning = bigquery.TimePartitioning(field=field)
    table.clustering_fields = clustering
    table.description = description
    return table


def test_truncating_a_table_of_other_columns_keeps_its_partitioning_and_clustering(wh, client):
    existing = _partitioned({"day": "DATE", "id": "INT64"}, "day", ["id"], "kept")
    staged = _table(STAGED, {"day": "DATE", "id": "INT64", JOB_ID_COLUMN: "STRING"}, rows=3)
    answer(client, "get_table", _in_turn(existing, staged))
    answer(client, "query", _query_job())

    commit_output(wh, JobScope("job-1", "dev"), TABLE, 1, "WRITE_TRUNCATE")

    (sql,), _ = client.query.call_args
    assert sql.startswith(
        f"CREATE OR REPLACE TABLE `{PROJECT}.d.t`\nPARTITION BY `day`\nCLUSTER BY `id`\n"
        'OPTIONS (description = "kept") AS'
    )


def test_truncating_a_table_of_the_same_columns_is_one_transaction(wh, client):
    existing = _partitioned(OUT, "PredictionTimestamp", [JOB_ID_COLUMN], "kept")
    answer(client, "get_table", _in_turn(existing, _table(STAGED, OUT, rows=3)))
    answer(client, "query", _in_turn(_query_job(rows=[(0,)]), _query_job()))

    assert commit_output(wh, JobScope("job-1", "dev"), TABLE, 1, "WRITE_TRUNCATE").rows == 3

    landed, truncate = (c.args[0] for c in client.query.call_args_list)
    assert "@since" in landed
    assert truncate == bq_sql.truncate_insert(TABLE, [STAGED], list(OUT))


def test_many_shards_land_as_one_copied_table_so_no_per_table_minimum_is_billed_per_shard(
    wh, client
):
    # BigQuery bills at least 10 MB per table a query references: 64 small staging tables
    # would cost 640 MB. One copy job (free) puts them in one table, which the landing reads.
    staged = [STAGED.with_table(f"_mlsys_stage_job_1_{k}") for k in range(3)]
    combined = STAGED.with_table("_mlsys_stage_job_1_all")
    tables = {str(t): _table(t, OUT, rows=2) for t in staged}
    tables[str(combined)] = _table(combined, OUT, rows=6)
    answer(client, "get_table", lambda name, **_: tables.get(str(name)) or _not_found(name))
    answer(client, "copy_table", strict(bigquery.CopyJob, result=None))
    answer(client, "update_table", lambda table, fields, **_: table)
    answer(client, "query", _query_job())

    assert commit_output(wh, JobScope("job-1", "dev"), TABLE, 3, "WRITE_EMPTY").rows == 6

    sources, destination = client.copy_table.call_args.args
    assert sources == [str(t) for t in staged] and destination == str(combined)
    assert client.copy_table.call_args.kwargs["job_config"].write_disposition == "WRITE_TRUNCATE"
    (create,) = (c.args[0] for c in client.query.call_args_list)
    assert f"FROM `{combined}`" in create and "_mlsys_stage_job_1_0" not in create


def _not_found(name):
    raise gexc.NotFound(f"Table {name}")


def test_a_partitioning_the_job_cannot_keep_is_refused_before_anything_is_written(wh, client):
    existing = _partitioned({"other": "STRING"}, None)  # ingestion-time partitioning
    answer(client, "get_table", _in_turn(existing, _table(STAGED, OUT, rows=3)))

    with pytest.raises(SchemaMismatch, match="ingestion time"):
        commit_output(wh, JobScope("job-1", "dev"), TABLE, 1, "WRITE_TRUNCATE")
    client.query.assert_not_called()


def test_a_truncating_load_states_the_tables_own_partitioning(wh, client):
    answer(client, "get_table", _partitioned({"x": "FLOAT64"}, "when", ["x"]))
    answer(client, "load_table_from_file", _load_job())

    wh.write(pd.DataFrame({"x": [1.0]}), TABLE, "WRITE_TRUNCATE")

    config = client.load_table_from_file.call_args.kwargs["job_config"]
    assert config.time_partitioning.field == "when" and config.clustering_fields == ["x"]


def test_an_incremental_plan_freezes_the_new_keys_in_bigquery_and_reads_that(
    wh, client, read_client
):
    # bqemulator has no IS NOT DISTINCT FROM: the anti-join statement is checked here.
    from mlsys.warehouse import KeyExclusion

    output = TableId(PROJECT, "d", "scores")
    snapshot = TableId(PROJECT, "mlsys_dev", "_mlsys_snapshot_job_1")
    tables = {
        str(TABLE): _table(TABLE, {"a": "INT64"}),
        str(output): _table(
            output, {"a": "INT64", "ModelName": "STRING", "ModelVersion": "STRING"}
        ),
        str(snapshot): _table(snapshot, {"a": "INT64"}, rows=4),
    }
    answer(client, "get_table", lambda name, **_: tables[str(name)])
    sent = []

    def query(sql, job_config=None, **_):
        sent.append((sql, {p.name: p.value for p in job_config.query_parameters}))
        return _query_job()

    answer(client, "query", query)
    answer(read_client, "create_read_session", _session("s/0", "s/1"))
    exclude = KeyExclusion(output, ("a",), (("ModelName", "m"), ("ModelVersion", "v1")))
    plan = wh.plan_read(TABLE, ["a"], 2, JobScope("job-1", "dev"), exclude)

    [(sql, params)] = sent
    assert sql.startswith(f"CREATE TABLE IF NOT EXISTS `{snapshot}`")
    assert f"FROM `{TABLE}` AS I" in sql and f"FROM `{output}` AS O" in sql
    assert params == {"match_0": "m", "match_1": "v1"}
    assert plan.rows_total == 4
    assert {s["table"] for s in plan.shards} == {str(snapshot)}

    # No output table yet: nothing to leave out, the input is read as it is.
    tables.pop(str(output))
    tables[str(TABLE)] = _table(TABLE, {"a": "INT64"}, rows=9)
    answer(
        client,
        "get_table",
        lambda name, **_: tables.get(str(name)) or (_ for _ in ()).throw(gexc.NotFound("x")),
    )
    plan = wh.plan_read(TABLE, ["a"], 2, JobScope("job-2", "dev"), exclude)
    assert len(sent) == 1 and plan.rows_total == 9
    assert {s["table"] for s in plan.shards} == {str(TABLE)}
