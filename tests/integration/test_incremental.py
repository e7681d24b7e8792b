"""mode "incremental": each key is predicted once per model version, over a table that grows
(real DuckDB, real model store; the anti-join runs inside DuckDB)."""

from __future__ import annotations

import pandas as pd
import pytest

from mlsys import datasets
from mlsys.artifacts import save_model
from mlsys.errors import InvalidRequest
from mlsys.ids import TableId
from mlsys.predict import PredictSpec, predict_table
from mlsys.registry import sync_registry
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse
from tests.models import FEATURES, ScriptedClassifier

pytestmark = pytest.mark.integration

ENV = "dev"
INPUT = TableId("mlsys-local", "titanic", "growing")
OUTPUT = TableId("mlsys-local", "titanic", "scores")


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"batch_rows": 300, "rows_per_shard": 1_000})


@pytest.fixture
def stack(settings):
    warehouse = open_warehouse(settings=settings)
    store = open_store(settings=settings)
    model = ScriptedClassifier().fit(pd.DataFrame(columns=FEATURES))
    for version in (1, 2):
        save_model(
            model,
            store,
            settings.bucket_for(ENV),
            "scorer",
            version,
            target="Survived",
            id_columns=["PassengerId"],
        )
    sync_registry(warehouse, store, settings, ENV)
    yield warehouse, store
    warehouse.close()


def append(warehouse, start: int, rows: int) -> None:
    frame = datasets.titanic(start + rows, seed=3).iloc[start:]
    warehouse.write(frame, INPUT, "WRITE_APPEND")


def run(settings, warehouse, store, job_id, version="v1", **options):
    spec = PredictSpec.parse(
        env=ENV,
        input_table=str(INPUT),
        output_table=str(OUTPUT),
        model_name="scorer",
        model_version=version,
        settings=settings,
        **{"mode": "incremental", **options},
    )
    return predict_table(spec, warehouse, store, settings, job_id)


def predicted(warehouse) -> pd.DataFrame:
    return warehouse.read_table(OUTPUT).to_pandas()


def test_two_runs_over_a_growing_table_predict_each_key_exactly_once(settings, stack):
    warehouse, store = stack
    append(warehouse, 0, 2_500)
    first = run(settings, warehouse, store, "run-1")
    assert first.rows_written == 2_500 and first.shards > 1
    append(warehouse, 2_500, 700)
    second = run(settings, warehouse, store, "run-2")
    assert second.rows_written == 700
    out = predicted(warehouse)
    assert len(out) == 3_200
    assert out["PassengerId"].is_unique
    assert set(out.loc[out["JobId"] == "run-2", "PassengerId"]) == set(range(2_501, 3_201))

    nothing = run(settings, warehouse, store, "run-3")
    assert nothing.rows_written == 0 and not nothing.already_committed
    assert len(predicted(warehouse)) == 3_200

    # Another model version has predicted nothing yet: it scores every key once.
    other = run(settings, warehouse, store, "run-4", version="v2")
    assert other.rows_written == 3_200
    counts = predicted(warehouse).groupby("ModelVersion")["PassengerId"].nunique()
    assert counts.to_dict() == {"v1": 3_200, "v2": 3_200}


def test_a_full_run_still_rescores_everything(settings, stack):
    warehouse, store = stack
    append(warehouse, 0, 500)
    run(settings, warehouse, store, "inc-1")
    full = run(settings, warehouse, store, "full-1", mode="full")
    assert full.rows_written == 500
    assert len(predicted(warehouse)) == 1_000


def test_key_columns_must_be_id_columns_and_the_output_must_be_appended(settings, stack):
    warehouse, store = stack
    append(warehouse, 0, 100)
    with pytest.raises(InvalidRequest, match="not id columns"):
        run(settings, warehouse, store, "bad-keys", key_columns=["Name"])
    with pytest.raises(InvalidRequest, match="WRITE_APPEND"):
        run(settings, warehouse, store, "bad-disp", write_disposition="WRITE_TRUNCATE")
    with pytest.raises(InvalidRequest, match="only applies"):
        run(settings, warehouse, store, "bad-mode", mode="full", key_columns=["PassengerId"])
    with pytest.raises(InvalidRequest, match="Unknown mode"):
        run(settings, warehouse, store, "bad-name", mode="sometimes")
    result = run(
        settings,
        warehouse,
        store,
        "keys",
        id_columns=["PassengerId", "Name"],
        key_columns=["PassengerId"],
    )
    assert result.rows_written == 100


def test_null_keys_are_keys_too(settings, stack):
    warehouse, store = stack
    frame = datasets.titanic(50, seed=4)
    frame["Ticket"] = [None if i % 5 == 0 else f"T{i}" for i in range(50)]
    warehouse.write(frame, INPUT, "WRITE_TRUNCATE")
    first = run(settings, warehouse, store, "nk-1", id_columns=["Ticket", "PassengerId"])
    second = run(settings, warehouse, store, "nk-2", id_columns=["Ticket", "PassengerId"])
    assert (first.rows_written, second.rows_written) == (50, 0)
