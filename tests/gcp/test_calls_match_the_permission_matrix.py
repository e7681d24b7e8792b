"""The Google API calls each process' code makes are the ones infra/permissions.toml grants it:
the API's checks and registry reads, and a worker's whole job, run on the emulators through
clients that record every call (and refuse none, as the emulators grant everything)."""

from __future__ import annotations

import tomllib
import uuid

import pandas as pd
import pytest

from mlsys.artifacts import save_model
from mlsys.ids import TableId
from mlsys.predict import PredictSpec, predict_table, prepare_predict
from mlsys.prediction_stats import read_stats
from mlsys.registry import read_registry, sync_registry
from mlsys.warehouse.bigquery import BigQueryWarehouse
from tests.infra import INFRA
from tests.models import FEATURES, ScriptedClassifier

pytestmark = pytest.mark.integration

MATRIX = tomllib.loads((INFRA / "permissions.toml").read_text())


def _granted(account: str) -> set[str]:
    return {
        call["method"]
        for grant in MATRIX["grant"]
        if MATRIX["processes"][grant["process"]] == account
        for call in grant["calls"]
    }


class Recording:
    """Forwards everything to `inner` and records `Class.method` of each public call."""

    def __init__(self, inner, name: str, calls: set[str]) -> None:
        self._inner, self._name, self._calls = inner, name, calls

    def __getattr__(self, attr):
        value = getattr(self._inner, attr)
        if callable(value) and not attr.startswith("_"):
            self._calls.add(f"{self._name}.{attr}")
        return value


def _recorded(
    real: BigQueryWarehouse, emulated: bool = True, read_sessions: bool = True
) -> tuple[BigQueryWarehouse, set[str]]:
    calls: set[str] = set()
    warehouse = BigQueryWarehouse(
        real.project,
        real.settings,
        client=Recording(real.client, "Client", calls),
        read_client=Recording(real.read_client, "BigQueryReadClient", calls),
        retry_timeout=20,
        emulated=emulated,
        read_sessions=read_sessions,
    )
    return warehouse, calls


def test_the_api_and_the_worker_call_only_what_their_accounts_are_granted(
    bigquery_warehouse, gcs_store
):
    real, settings = bigquery_warehouse, bigquery_warehouse.settings
    data = TableId(real.project, "matrix", f"in_{uuid.uuid4().hex[:8]}")
    out = data.with_table(f"out_{uuid.uuid4().hex[:8]}")
    real.write(
        pd.DataFrame(
            {"PassengerId": [1, 2, 3], "Sex": ["male", "female", "male"], "Pclass": [1, 2, 3]}
        ),
        data,
        "WRITE_TRUNCATE",
    )
    model = ScriptedClassifier().fit(None)
    save_model(
        model,
        gcs_store,
        settings.bucket_for("dev"),
        "matrix-model",
        1,
        features=FEATURES,
        id_columns=["PassengerId"],
        target="Survived",
    )

    # The datasets exist, as on Google Cloud: Terraform makes mlsys_dev, the data team the rest.
    real.tables.ensure_dataset(real.project, settings.dataset_for("dev"))
    worker, worker_calls = _recorded(real)
    sync_registry(worker, gcs_store, settings, "dev")

    # The production paths of the API (the emulated ones count rows with a query, which only
    # bqemulator needs: it keeps no row counts after DML).
    web, web_calls = _recorded(real, emulated=False, read_sessions=False)
    spec = PredictSpec.parse(
        settings=settings,
        env="dev",
        input_table=str(data),
        output_table=str(out),
        model_name="matrix-model",
        model_version="latest",
    )
    read_registry(web, settings, "dev")
    prepare_predict(spec, web, settings)

    assert web_calls, "the API's checks reach BigQuery"
    assert web_calls <= _granted("web"), web_calls - _granted("web")

    result = predict_table(spec, worker, gcs_store, settings, f"job-{uuid.uuid4().hex[:12]}")
    assert result.rows_written == 3
    assert worker_calls <= _granted("worker"), worker_calls - _granted("worker")
    assert {"BigQueryReadClient.create_read_session", "Client.query"} <= worker_calls

    # GET /models/{name}/versions/{v}/monitoring (and the dashboard's job chart): a query job.
    web_calls.clear()
    assert read_stats(web, settings, "dev", "matrix-model", 1), "the job's statistics are read"
    assert "Client.query" in web_calls
    assert web_calls <= _granted("web"), web_calls - _granted("web")
