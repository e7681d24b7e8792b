"""A seed user's own notebook and scripts (written for this test in the seed's style) run
unchanged on mlsys, on the embedded backends and on the Google Cloud emulators; the model they
save predicts through mlsys with no flags, exactly as their own script predicts."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from nbclient import NotebookClient

from mlsys import datasets
from mlsys.ids import TableId
from mlsys.settings import Settings, get_settings
from mlsys.warehouse import open_warehouse
from tests.gcp.emulators.servers import (  # noqa: F401 - fixtures
    bigquery_emulator,
    gcs_emulator,
    gcs_store,
)
from tests.integration.seed_style.notebook import seed_notebook

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).resolve().parent / "seed_style" / "scripts"
MLSYS = Path(sys.executable).parent / "mlsys"
CONFIG = ("MLSYS_", "GCP_", "GCS_", "BQ_", "BIGQUERY_", "STORAGE_EMULATOR")


@pytest.fixture(params=["embedded", "emulators"])
def seed_env(request, tmp_path, monkeypatch) -> dict[str, str]:
    """This process' and every child's environment: only what a seed user would set."""
    for name in list(os.environ):
        if name.startswith(CONFIG):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLSYS_HOME", str(tmp_path / "home"))
    if request.param == "emulators":
        bigquery = request.getfixturevalue("bigquery_emulator")
        request.getfixturevalue("gcs_store")  # empties the emulator's buckets
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", request.getfixturevalue("gcs_emulator"))
        for name, value in bigquery.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GCP_PROJECT_ID", bigquery.project)
        monkeypatch.setenv("MLSYS_WAREHOUSE", f"bigquery://{bigquery.project}")
        monkeypatch.setenv("MLSYS_MODEL_STORE", "gs://")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    get_settings.cache_clear()
    yield dict(os.environ)
    get_settings.cache_clear()


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*args], env=env, capture_output=True, text=True, timeout=300, cwd=os.getcwd()
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.timeout(600)
def test_the_seed_notebook_and_scripts_run_and_mlsys_predicts_their_model(seed_env):
    settings = Settings()
    project = settings.gcp_project_id
    warehouse = open_warehouse(settings=settings)
    passengers = datasets.titanic(600, seed=5)
    warehouse.write(passengers.iloc[:400], TableId(project, "titanic", "train"), "WRITE_TRUNCATE")
    test = passengers.iloc[400:].drop(columns=["Survived"])
    warehouse.write(test, TableId(project, "titanic", "test"), "WRITE_TRUNCATE")
    warehouse.close()

    notebook = seed_notebook()
    NotebookClient(notebook, timeout=180, kernel_name="python3").execute()
    outputs = [o for cell in notebook.cells for o in cell.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    listing = "".join(o.get("text", "") for o in outputs)
    assert "titanic-survival/v1/model.pkl" in listing

    # The new way to register, then the seed's own registry script: both run.
    run(seed_env, str(MLSYS), "registry", "sync", "--env", "dev")
    legacy = run(seed_env, sys.executable, str(SCRIPTS / "model_registry.py"), "--env=dev")
    assert "titanic-survival/v1/model.pkl" in legacy.stdout and "generation" in legacy.stdout

    suffix = uuid.uuid4().hex[:8]
    theirs = TableId(project, "titanic", f"seed_predictions_{suffix}")
    ours = TableId(project, "titanic", f"predictions_{suffix}")
    table_args = ["--env=dev", f"--input_table={project}.titanic.test",
                  "--model_name=titanic-survival", "--model_version=v1"]  # fmt: skip
    run(seed_env, sys.executable, str(SCRIPTS / "predict.py"), *table_args,
        f"--output_table={theirs}")  # fmt: skip
    run(seed_env, str(MLSYS), "predict", *table_args, f"--output_table={ours}")
    listed = run(seed_env, str(MLSYS), "registry", "list", "--env", "dev").stdout
    assert "titanic-survival" in listed and "active" in listed

    warehouse = open_warehouse(settings=Settings())
    try:
        seed_rows = warehouse.read_table(theirs).to_pandas()
        schema = warehouse.schema(ours)
        mlsys_rows = warehouse.read_table(ours).to_pandas()
    finally:
        warehouse.close()
    assert len(mlsys_rows) == len(seed_rows) == 200
    # No id columns were declared: the input's other columns come along (Vertex-like).
    assert {"PassengerId", "Name", "Ticket"} <= set(schema.names)
    assert schema.field("Survived").type == pa.int64()  # the model's labels, not strings
    both = pd.merge(seed_rows, mlsys_rows, on="PassengerId", suffixes=("_seed", "_mlsys"))
    assert len(both) == 200
    assert (both["Survived_seed"] == both["Survived_mlsys"]).all()
