"""The example notebooks run top to bottom on the embedded backends, in a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from mlsys.evaluation.store import read_evaluations
from mlsys.ids import TableId
from mlsys.registry import read_registry
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse
from tests.integration.jobs_support import make_stack
from tests.services import celery_worker, serve_wsgi
from web import create_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    """Run every cell in a fresh python3 kernel started in `workdir`; raises on a cell error."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    ).execute()
    return notebook


def images(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


@pytest.mark.timeout(420)
def test_titanic_example_trains_registers_and_predicts(settings, tmp_path, monkeypatch):
    # The kernel inherits this environment: the `settings` fixture points MLSYS_HOME at a temp
    # folder; no API URL, so the job runs in-process; the inline backend renders the figures.
    monkeypatch.delenv("MLSYS_API_URL", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    warehouse = open_warehouse(settings=settings)
    project = settings.gcp_project_id
    # `mlsys demo`'s output table, there before: the notebook must leave it alone.
    demo_output = TableId(project, "titanic", "predictions")
    warehouse.write(
        pd.DataFrame({"PassengerId": [7], "JobId": ["demo"]}), demo_output, "WRITE_EMPTY"
    )
    warehouse.close()

    notebook = execute(NOTEBOOKS / "titanic-survival-example.ipynb", tmp_path)
    execute(NOTEBOOKS / "titanic-survival-example.ipynb", tmp_path)  # run again, unchanged

    assert images(notebook) >= 5
    warehouse = open_warehouse(settings=settings)
    passengers = warehouse.count_rows(TableId(project, "titanic", "passengers"))
    predictions = TableId(project, "titanic", "notebook_predictions")
    assert passengers > 0
    assert warehouse.read_table(demo_output).to_pylist() == [{"PassengerId": 7, "JobId": "demo"}]
    runs = warehouse.query(
        f"SELECT JobId, ModelVersion, COUNT(*) AS n FROM `{predictions}` "
        "GROUP BY JobId, ModelVersion"
    )
    assert len(runs) == 2 and runs.n.tolist() == [passengers] * 2  # appended, both runs there
    assert set(runs.ModelVersion) == {"v1"}

    # The second run saved the very same bytes: no second version.
    (entry,) = read_registry(warehouse, settings, "dev")
    assert (entry.model_name, entry.version, entry.status) == ("titanic-survival", "v1", "active")
    assert entry.aliases == ["candidate"]
    assert entry.metadata["id_columns"] == ["PassengerId"]
    assert entry.metadata["metrics"]["roc_auc"] > 0.75

    # Section 10 evaluated the predictions against the held-out passengers' outcomes.
    evaluated = read_evaluations(warehouse, settings, "dev", "titanic-survival", 1)
    assert len({e["job_id"] for e in evaluated}) == 2  # one evaluation per run
    assert evaluated[-1]["matched"] > 0 and evaluated[-1]["unmatched"] > 0
    assert evaluated[-1]["accuracy"] > 0.7

    files = {b.path for b in open_store(settings=settings).list_blobs(settings.bucket_for("dev"))}
    assert files == {"titanic-survival/v1/model.pkl", "titanic-survival/v1/metadata.json"}


@pytest.mark.timeout(300)
def test_titanic_example_finds_the_running_service_as_the_cli_does(
    tmp_path, redis_url, redis_client, monkeypatch
):
    """In `notebooks/`, the kernel reads the repository's `.env` (as `bash scripts/local-env`
    wrote it: the API's URL and token) and sends the job to that service."""
    token = "notebook-token-0123456789"  # pragma: allowlist secret
    stack = make_stack(tmp_path, redis_url, MLSYS_API_TOKENS=token)
    checkout = tmp_path / "checkout"
    (checkout / "notebooks").mkdir(parents=True)
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    monkeypatch.setenv("MLSYS_HOME", str(stack.settings.home))  # the service's backends
    monkeypatch.delenv("MLSYS_ENV_FILE", raising=False)  # let the notebook find .env
    monkeypatch.delenv("MPLBACKEND", raising=False)

    with serve_wsgi(app) as url, celery_worker(stack.env, stack.cwd, concurrency=1):
        (checkout / ".env").write_text(f"MLSYS_API_URL={url}\nMLSYS_API_TOKEN={token}\n")
        notebook = execute(NOTEBOOKS / "titanic-survival-example.ipynb", checkout / "notebooks")

    printed = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.outputs
    )  # fmt: skip
    assert f"running the job on the service at {url}" in printed
    project = stack.settings.gcp_project_id
    jobs = stack.warehouse.query(
        f"SELECT DISTINCT JobId FROM `{project}.titanic.notebook_predictions`"
    ).JobId.tolist()
    assert len(jobs) == 1 and stack.jobs.get(jobs[0]).state == "succeeded"
    (evaluated,) = read_evaluations(stack.warehouse, stack.settings, "dev", "titanic-survival", 1)
    assert stack.jobs.get(evaluated["job_id"]).kind == "evaluate"  # ran on the service
