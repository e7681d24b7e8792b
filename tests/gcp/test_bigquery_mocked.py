"""What bqemulator cannot show, through `create_autospec` mocks of the real clients.

Each test names the emulator gap it covers: table expiration (ignored), DML statistics (not
reported), query results through the Storage Read API (not served), and cloud failures
(permission, quota, outage) that a local server does not produce.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from unittest import mock

import pandas as pd
import pyarrow as pa
import pytest
import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, bigquery_storage

from mlsys.errors import BackendUnavailable, InvalidRequest, PermissionDenied, TableNotFound
from mlsys.ids import TableId
from mlsys.settings import Settings
from mlsys.warehouse import JOB_ID_COLUMN, JobScope
from mlsys.warehouse.bigquery import BigQueryWarehouse

pytestmark = pytest.mark.unit

PROJECT = "mlsys-test"
TABLE = TableId(PROJECT, "d", "t")


@pytest.fixture
def client():
    return mock.create_autospec(bigquery.Client, instance=True)


@pytest.fixture
def read_client():
    return mock.create_autospec(bigquery_storage.BigQueryReadClient, instance=True)


@pytest.fixture
def wh(client, read_client) -> BigQueryWarehouse:
    settings = Settings(_env_file=None, GCP_PROJECT_ID=PROJECT)
    return BigQueryWarehouse(
        PROJECT, settings, client=client, read_client=read_client, emulated=False
    )


def test_staging_tables_expire_on_their_own(wh, client):
    # bqemulator accepts `expires` and drops it, so the PATCH is checked here.
    scope = JobScope("job-1", "dev")
    schema = pa.schema({"id": pa.int64(), JOB_ID_COLUMN: pa.string()})
    batch = pa.record_batch({"id": [1, 2], JOB_ID_COLUMN: ["job-1"] * 2}, schema=schema)
    before = dt.datetime.now(dt.UTC)

    assert wh.stage(scope, 3, [batch], schema) == 2

    load = client.load_table_from_file.call_args
    assert load.args[1] == f"{PROJECT}.mlsys_dev._mlsys_stage_job_1_3"
    assert load.kwargs["job_config"].write_disposition == "WRITE_TRUNCATE"
    assert [f.field_type for f in load.kwargs["job_config"].schema] == ["INT64", "STRING"]
    table, fields = client.update_table.call_args.args
    assert fields == ["expires"]
    assert before + dt.timedelta(days=2) <= table.expires <= before + dt.timedelta(days=2, hours=1)


def test_merge_reads_dml_statistics_without_a_second_query(wh, client):
    # bqemulator reports no dmlStats, so against it the warehouse counts new keys first.
    client.get_table.return_value = bigquery.Table(
        str(TABLE), [bigquery.SchemaField("k", "STRING"), bigquery.SchemaField("v", "INT64")]
    )
    job = client.query.return_value
    job.dml_stats = mock.Mock(inserted_row_count=2, updated_row_count=1)

    result = wh.merge(TABLE, pa.table({"k": ["a", "b", "c"], "v": [1, 2, 3]}), ["k"])

    assert (result.inserted, result.updated) == (2, 1)
    (sql,), _ = client.query.call_args
    assert sql.startswith(f"MERGE `{PROJECT}.d.t` AS T") and client.query.call_count == 1
    assert "T.`v` IS DISTINCT FROM S.`v`" in sql


def test_query_results_come_through_the_storage_read_api(wh, client, read_client):
    # bqemulator serves the Storage Read API for tables only, not for query results.
    client.query.return_value.to_arrow.return_value = pa.table({"n": [1]})
    assert wh.query("SELECT 1 AS n")["n"].tolist() == [1]
    client.query.return_value.to_arrow.assert_called_once_with(
        bqstorage_client=read_client, create_bqstorage_client=False
    )


def test_plan_asks_for_one_stream_per_shard(wh, client, read_client):
    client.get_table.return_value = mock.Mock(table_type="TABLE", num_rows=9)
    session = bigquery_storage.types.ReadSession(
        streams=[{"name": f"s/{i}"} for i in range(3)],
        arrow_schema={"serialized_schema": pa.schema({"a": pa.int64()}).serialize().to_pybytes()},
    )
    read_client.create_read_session.return_value = session

    plan = wh.plan_read(TABLE, ["a"], 3, JobScope("job-1", "dev"))

    assert plan.rows_total == 9 and [s["stream"] for s in plan.shards] == ["s/0", "s/1", "s/2"]
    kwargs = read_client.create_read_session.call_args.kwargs
    assert kwargs["max_stream_count"] == 3 and kwargs["parent"] == f"projects/{PROJECT}"
    assert list(kwargs["read_session"].read_options.selected_fields) == ["a"]


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
    client.query.side_effect = exc
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
    client.get_table.side_effect = gexc.NotFound("no table")
    frame = pd.DataFrame({"x": [1.0, float("nan")], "none": [None, None]})
    wh.write(frame, TABLE, "WRITE_APPEND")
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
