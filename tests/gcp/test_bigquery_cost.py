"""A job's BigQuery bill, priced by bench/bigquery_cost.py's model of BigQuery's on-demand rules
over the requests the real warehouse sends to strict fakes: it does not grow with the shard
count, and stays within 5% of reading each needed byte once."""

from __future__ import annotations

import pytest

from bench.bigquery_cost import MB, ideal, run_job

pytestmark = pytest.mark.unit

ROWS = 10_000_000


@pytest.mark.parametrize("disposition", ["WRITE_APPEND", "WRITE_EMPTY", "WRITE_TRUNCATE"])
def test_the_bill_does_not_grow_with_the_shards_and_is_near_the_ideal(disposition):
    history = 0 if disposition == "WRITE_EMPTY" else 100_000_000
    bills = {n: run_job(ROWS, n, disposition, history).bill for n in (1, 8, 64)}

    totals = {n: sum(billed for _, billed in bill) for n, bill in bills.items()}
    assert len(set(totals.values())) == 1, totals
    assert totals[64] <= 1.05 * ideal(ROWS), (totals[64] / MB, ideal(ROWS) / MB)
    sessions = [label for label, _ in bills[64] if label.startswith("Storage Read session")]
    assert sessions == ["Storage Read session, 64 stream(s)"]  # one per job, a stream per shard


def test_a_per_shard_restricted_session_would_be_billed_once_per_shard():
    # The model prices what the old design did, so the test above can fail: one session per
    # shard, each restricted to its rows, scans every row each time.
    from google.cloud import bigquery_storage

    from bench.bigquery_cost import INPUT, INPUT_COLUMNS, Table, World

    world = World({str(INPUT): Table(dict(INPUT_COLUMNS), ROWS)})
    path = f"projects/{INPUT.project}/datasets/{INPUT.dataset}/tables/{INPUT.table}"
    for k in range(8):
        session = bigquery_storage.types.ReadSession(
            table=path,
            read_options={"selected_fields": list(INPUT_COLUMNS), "row_restriction": f"k = {k}"},
        )
        world.create_read_session("projects/p", session, 1)
    assert sum(b for _, b in world.bill) == 8 * ROWS * Table(dict(INPUT_COLUMNS), 0).width(
        list(INPUT_COLUMNS)
    )
