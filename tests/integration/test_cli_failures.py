"""`mlsys predict` with an estimator that raises mid-job: one line, the job, the log; no
traceback on the terminal, and the output table as it was."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from mlsys import datasets
from mlsys.artifacts import save_model
from mlsys.ids import TableId
from mlsys.registry import sync_registry
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse
from tests.integration.test_cli import MLSYS, TIMEOUT, cli_env
from tests.models import ScriptedClassifier

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
INPUT = TableId("mlsys-local", "titanic", "passengers")
OUTPUT = TableId("mlsys-local", "titanic", "predictions")


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**cli_env(home), "MLSYS_BATCH_ROWS": "100", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [str(MLSYS), *args],
        cwd=home.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def predict(home: Path, input_table: TableId) -> subprocess.CompletedProcess:
    return run_cli(
        home, "predict", "--env", "dev", "--input-table", str(input_table),
        "--output-table", str(OUTPUT), "--model-name", "scripted", "--id-columns", "PassengerId",
    )  # fmt: skip


def test_a_model_raising_mid_batch_ends_in_one_line_and_leaves_the_output(settings):
    home = settings.home
    warehouse = open_warehouse(settings=settings)
    store = open_store(settings=settings)
    passengers = datasets.titanic(500, seed=3)
    warehouse.write(passengers, INPUT, "WRITE_TRUNCATE")
    poisoned = passengers.copy()
    poisoned.loc[350, "Sex"] = "poison"  # a bad row in the fourth batch
    warehouse.write(poisoned, INPUT.with_table("poisoned"), "WRITE_TRUNCATE")
    save_model(ScriptedClassifier().fit(None), store, "mlsys-models-dev", "scripted")
    sync_registry(warehouse, store, settings, "dev")
    warehouse.close()

    good = predict(home, INPUT)
    assert good.returncode == 0, good.stderr
    before = open_warehouse(settings=settings).read_table(OUTPUT).to_pandas()
    assert len(before) == 500

    bad = predict(home, INPUT.with_table("poisoned"))

    assert bad.returncode == 1
    # Above it only the progress bar (redrawn with \r); the failure is one line, the last.
    *bar, line = bad.stderr.strip().splitlines()
    assert all(row.startswith("predict scripted/v1") for row in bar), bad.stderr
    assert "Traceback" not in bad.stderr and "Traceback" not in bad.stdout
    assert line.startswith("error: mlsys predict failed (job cli-")
    assert "ScriptedClassifier raised ValueError" in line
    assert "cannot score a passenger whose Sex is 'poison'" in line
    log = Path(re.search(r"Full log: (\S+)$", line).group(1))
    assert log.is_relative_to(home) and log.exists()
    job_id = re.search(r"\(job (cli-[0-9a-f]+)\)", line).group(1)
    assert log.name.startswith(job_id)
    assert "Traceback" in log.read_text() and "ValueError" in log.read_text()

    wh = open_warehouse(settings=settings)
    after = wh.read_table(OUTPUT).to_pandas()
    pd.testing.assert_frame_equal(after, before)
    assert job_id not in set(after["JobId"])
