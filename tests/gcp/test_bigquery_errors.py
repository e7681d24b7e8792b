"""BigQuery failures, from the payloads the API sends: what passes is retried with backoff,
only accessDenied is a permission error. Exceptions are built the way the client builds them
(`from_http_response` for an error response, `_error_result_to_exception` for a failed job)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import bigquery, bigquery_storage
from google.cloud.bigquery.job.base import _error_result_to_exception

from mlsys.errors import BackendUnavailable, InvalidRequest, PermissionDenied, TableNotFound
from mlsys.ids import TableId
from mlsys.settings import Settings
from mlsys.warehouse.bigquery import BigQueryWarehouse
from tests.gcp.fakes import answer, strict

pytestmark = pytest.mark.unit

PROJECT = "mlsys-test"


def http_error(status: int, reason: str, message: str, grpc_status: str):
    """The exception google-api-core raises for this REST error response."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": grpc_status,
        }
    }
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["content-type"] = "application/json; charset=UTF-8"
    response.request = requests.Request("POST", "https://bigquery.googleapis.com/x").prepare()
    return gexc.from_http_response(response)


def job_error(reason: str, message: str):
    """The exception QueryJob.result() raises for a job whose status.errorResult is this."""
    error = {"reason": reason, "message": message}
    return _error_result_to_exception(error, [error])


PAYLOADS = {
    "accessDenied": http_error(
        403,
        "accessDenied",
        "Access Denied: Table mlsys-test:d.t: Permission bigquery.tables.getData denied on "
        "table mlsys-test:d.t (or it may not exist).",
        "PERMISSION_DENIED",
    ),
    "quotaExceeded": http_error(
        403,
        "quotaExceeded",
        "Quota exceeded: Your project exceeded quota for concurrent queries. For more "
        "information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas",
        "PERMISSION_DENIED",
    ),
    "rateLimitExceeded": http_error(
        403,
        "rateLimitExceeded",
        "Exceeded rate limits: too many table update operations for this table.",
        "PERMISSION_DENIED",
    ),
    "backendError": http_error(
        503,
        "backendError",
        "Error encountered during execution. Retrying may solve the problem.",
        "UNAVAILABLE",
    ),
    "jobRateLimitExceeded": job_error(
        "jobRateLimitExceeded",
        "Exceeded rate limits: too many concurrent dml statements for this table.",
    ),
    "jobInternalError": job_error(
        "jobInternalError",
        "The job encountered an internal error during execution and was unable to complete "
        "successfully.",
    ),
    "billingNotEnabled": http_error(
        403,
        "billingNotEnabled",
        "Billing has not been enabled for this project. Enable billing at "
        "https://console.cloud.google.com/billing.",
        "PERMISSION_DENIED",
    ),
    "invalidQuery": http_error(
        400, "invalidQuery", "Syntax error: Unexpected identifier at [1:1]", "INVALID_ARGUMENT"
    ),
    "notFound": http_error(
        404,
        "notFound",
        "Not found: Table mlsys-test:d.t was not found in location US",
        "NOT_FOUND",
    ),
}
TRANSIENT = [
    "quotaExceeded",
    "rateLimitExceeded",
    "backendError",
    "jobRateLimitExceeded",
    "jobInternalError",
]
FINAL = {
    "accessDenied": PermissionDenied,
    "billingNotEnabled": InvalidRequest,
    "invalidQuery": InvalidRequest,
    "notFound": TableNotFound,
}


@pytest.fixture
def client():
    return strict(bigquery.Client)


@pytest.fixture
def wh(client):
    warehouse = BigQueryWarehouse(
        PROJECT,
        Settings(_env_file=None, GCP_PROJECT_ID=PROJECT),
        client=client,
        read_client=strict(bigquery_storage.BigQueryReadClient),
        emulated=False,
    )
    warehouse.waits = []
    warehouse.tables.sleep = warehouse.waits.append
    return warehouse


def _job(failure=None):
    job = strict(bigquery.QueryJob)
    answer(job, "result", failure if failure is not None else (lambda **_: iter([])))
    answer(job, "to_arrow", pa.table({"n": [1]}))
    return job


def test_the_payloads_carry_the_reasons_the_client_reports():
    # Sanity of the fixtures: the classes the client raises for them.
    assert isinstance(PAYLOADS["quotaExceeded"], gexc.Forbidden)
    assert isinstance(PAYLOADS["rateLimitExceeded"], gexc.Forbidden)
    assert isinstance(PAYLOADS["jobInternalError"], gexc.InternalServerError)
    assert PAYLOADS["accessDenied"].errors[0]["reason"] == "accessDenied"


@pytest.mark.parametrize("why", TRANSIENT)
@pytest.mark.parametrize("where", ["insert", "result"])
def test_what_passes_is_retried_as_a_new_job_with_backoff(wh, client, why, where):
    failure = PAYLOADS[why]
    first = failure if where == "insert" else _job(failure)
    jobs = [first, _job()]

    def query(*_, **__):
        job = jobs.pop(0)
        if isinstance(job, BaseException):
            raise job
        return job

    answer(client, "query", query)

    assert wh.query("SELECT 1 AS n")["n"].tolist() == [1]
    assert client.query.call_count == 2 and len(wh.waits) == 1 and 0 <= wh.waits[0] <= 1.0


@pytest.mark.parametrize("why", TRANSIENT)
def test_what_keeps_failing_is_backend_unavailable_after_bounded_attempts(wh, client, why):
    answer(client, "query", lambda *_, **__: _job(PAYLOADS[why]))
    with pytest.raises(BackendUnavailable, match=why):
        wh.query("SELECT 1")
    assert client.query.call_count == 6  # Backoff.attempts
    assert all(w <= 32.0 for w in wh.waits)


@pytest.mark.parametrize(("why", "mapped"), sorted(FINAL.items()))
def test_what_does_not_pass_is_mapped_at_once(wh, client, why, mapped):
    answer(client, "query", lambda *_, **__: _job(PAYLOADS[why]))
    with pytest.raises(mapped) as raised:
        wh.query("SELECT 1")
    assert client.query.call_count == 1 and wh.waits == []
    if mapped is PermissionDenied:
        assert "infra/permissions.toml" in raised.value.hint


@pytest.mark.parametrize("why", ["quotaExceeded", "rateLimitExceeded", "billingNotEnabled"])
def test_only_access_denied_is_a_permission_error(wh, client, why):
    answer(client, "get_table", PAYLOADS[why])
    with pytest.raises(Exception) as raised:
        wh.schema(TableId(PROJECT, "d", "t"))
    assert not isinstance(raised.value, PermissionDenied)
