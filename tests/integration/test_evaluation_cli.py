"""`mlsys evaluate` as a user runs it: JSON on stdout, a readable summary on stderr, and bad
input as one line and a non-zero exit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from mlsys.ids import TableId
from mlsys.warehouse.duckdb import DuckDBWarehouse
from tests.integration.test_cli import finish, start

pytestmark = pytest.mark.integration

OUTPUT = TableId("mlsys-local", "titanic", "predictions")
LABELS = TableId("mlsys-local", "titanic", "outcomes")


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    warehouse = DuckDBWarehouse(home / "warehouse.duckdb", home / "staging", "mlsys-local")
    n = 500
    ids = np.arange(n)
    predicted = ids % 2
    yesterday = datetime.now(UTC) - timedelta(days=1)
    output = pa.table(
        {
            "PassengerId": pa.array(ids, pa.int64()),
            "Survived": pa.array(predicted, pa.int64()),
            "PredictionProbability": pa.array(np.full(n, 0.8)),
            "PredictionTimestamp": pa.array([yesterday] * n, pa.timestamp("us", tz="UTC")),
            "ModelName": pa.array(["titanic-survival"] * n),
            "ModelVersion": pa.array(["v1"] * n),
            "JobId": pa.array(["job-1"] * n),
        }
    )
    warehouse.write(output, OUTPUT, "WRITE_TRUNCATE")
    truth = np.where(ids < 400, predicted, 1 - predicted)  # 80% right
    warehouse.write(pa.table({"PassengerId": ids, "Survived": truth}), LABELS, "WRITE_TRUNCATE")
    warehouse.close()
    return home


def _evaluate(home, *extra):
    return finish(
        start(
            home,
            "evaluate",
            "--env",
            "dev",
            "--output-table",
            str(OUTPUT),
            "--labels-table",
            str(LABELS),
            *extra,
        )
    )


def test_evaluate_prints_the_metrics_and_a_summary(home):
    result = _evaluate(home, "--days", "3")

    assert result.returncode == 0, result.stderr
    (version,) = json.loads(result.stdout)["versions"]
    assert version["window"]["metrics"]["accuracy"] == pytest.approx(0.8)
    assert "titanic-survival/v1: 500 of 500 predictions labelled; accuracy 0.800" in result.stderr


def test_duplicate_labels_are_one_line_and_a_non_zero_exit(home):
    warehouse = DuckDBWarehouse(home / "warehouse.duckdb", home / "staging", "mlsys-local")
    warehouse.write(pa.table({"PassengerId": [3], "Survived": [0]}), LABELS, "WRITE_APPEND")
    warehouse.close()

    result = _evaluate(home)

    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: Labels table mlsys-local.titanic.outcomes has 1 key value")
    assert "PassengerId=3: 2 rows" in line
