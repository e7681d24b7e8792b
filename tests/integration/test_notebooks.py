"""The example notebooks run top to bottom on the embedded backends, in a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mlsys.ids import TableId
from mlsys.registry import read_registry
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse

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


@pytest.mark.timeout(180)
def test_titanic_example_trains_registers_and_predicts(settings, tmp_path, monkeypatch):
    # The kernel inherits this environment: the `settings` fixture points MLSYS_HOME at a temp
    # folder; no API URL, so the job runs in-process; the inline backend renders the figures.
    monkeypatch.delenv("MLSYS_API_URL", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)

    notebook = execute(NOTEBOOKS / "titanic-survival-example.ipynb", tmp_path)

    assert images(notebook) >= 5
    warehouse = open_warehouse(settings=settings)
    project = settings.gcp_project_id
    passengers = warehouse.count_rows(TableId(project, "titanic", "passengers"))
    predictions = TableId(project, "titanic", "predictions")
    assert passengers > 0
    assert warehouse.count_rows(predictions) == passengers
    versions = warehouse.query(f"SELECT DISTINCT ModelVersion FROM `{predictions}`")
    assert versions.ModelVersion.tolist() == ["v1"]

    (entry,) = read_registry(warehouse, settings, "dev")
    assert (entry.model_name, entry.version, entry.status) == ("titanic-survival", "v1", "active")
    assert entry.aliases == ["candidate"]
    assert entry.metadata["id_columns"] == ["PassengerId"]
    assert entry.metadata["metrics"]["roc_auc"] > 0.75

    files = {b.path for b in open_store(settings=settings).list_blobs(settings.bucket_for("dev"))}
    assert files == {"titanic-survival/v1/model.pkl", "titanic-survival/v1/metadata.json"}
