"""What an append costs on a real project, as the output grows (`-m gcp`; prints figures).

The landed check and the guarded append filter on the job's partitions (PredictionTimestamp)
and cluster key (JobId): a dry run's bytes processed must not grow with the jobs already in
the table. Run with `-s` to see them (from the repository root):
  MLSYS_TEST_GCP_PROJECT=my-project uv run pytest -m gcp -s tests/gcp -k append_reads
"""

from __future__ import annotations

import datetime as dt
import uuid

import pyarrow as pa
import pytest

from mlsys.commit import commit_output
from mlsys.ids import TableId
from mlsys.warehouse import JOB_ID_COLUMN, JobScope, bq_sql

pytestmark = [pytest.mark.integration, pytest.mark.gcp]

ROWS_PER_JOB = 20_000


def _job_output(job_id: str) -> pa.Table:
    now = dt.datetime.now(dt.UTC)
    return pa.table(
        {
            "id": pa.array(range(ROWS_PER_JOB), pa.int64()),
            "score": pa.array([0.5] * ROWS_PER_JOB, pa.float64()),
            "PredictionTimestamp": pa.array([now] * ROWS_PER_JOB, pa.timestamp("us", tz="UTC")),
            JOB_ID_COLUMN: pa.array([job_id] * ROWS_PER_JOB),
        }
    )


def _dry_run_bytes(wh, sql: str, params: dict) -> int:
    from google.cloud import bigquery

    from mlsys.warehouse.bigquery.client import _parameter

    config = bigquery.QueryJobConfig(
        dry_run=True,
        use_query_cache=False,
        query_parameters=[_parameter(k, v) for k, v in params.items()],
    )
    return int(wh.client.query(sql, job_config=config).total_bytes_processed or 0)


def test_an_append_reads_the_same_bytes_after_1_10_and_100_prior_jobs(real_bigquery_warehouse):
    wh = real_bigquery_warehouse
    target = TableId(wh.project, "contract", f"append_cost_{uuid.uuid4().hex[:8]}")
    figures = {}
    for done in range(1, 101):
        scope = JobScope(f"job-{uuid.uuid4().hex[:12]}", "dev")
        wh.stage(scope, 0, _job_output(scope.job_id).to_batches(), _job_output("x").schema)
        commit_output(wh, scope, target, 1, "WRITE_APPEND")
        wh.discard(scope)
        if done in (1, 10, 100):
            probe = JobScope(f"job-{uuid.uuid4().hex[:12]}", "dev")
            columns = [f.name for f in wh.client.get_table(str(target)).schema]
            sql = bq_sql.rows_of_job(target, columns)
            figures[done] = _dry_run_bytes(wh, sql, wh.output.job_params(probe))
    print(f"\nbytes processed by the landed check of one append into {target}:")
    for done, processed in figures.items():
        print(f"  after {done:>3} prior jobs ({done * ROWS_PER_JOB:>9,} rows): {processed:>12,}")
    # Clustering prunes by JobId: the check does not read every prior job's rows.
    assert figures[100] < 10 * max(figures[1], 1)
