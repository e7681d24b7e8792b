"""Every predict job profiles its input and predictions against the model's training profile
and stores one row per feature in mlsys_{env}.prediction_stats (real DuckDB, real model store)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlsys import datasets
from mlsys.artifacts import save_model
from mlsys.demo import titanic_pipeline
from mlsys.ids import TableId
from mlsys.predict import PredictSpec, predict_table
from mlsys.prediction_stats import history, read_stats, stats_table
from mlsys.registry import sync_registry
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse

pytestmark = pytest.mark.integration

ENV = "dev"
PROJECT = "mlsys-local"
STEADY = TableId(PROJECT, "titanic", "steady")
SHIFTED = TableId(PROJECT, "titanic", "shifted")
OUTPUT = TableId(PROJECT, "titanic", "predictions")
FEATURES = datasets.FEATURES


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"batch_rows": 700, "rows_per_shard": 2_500})


@pytest.fixture
def stack(settings):
    warehouse = open_warehouse(settings=settings)
    store = open_store(settings=settings)
    train = datasets.titanic(4_000, seed=1)
    model = titanic_pipeline(n_estimators=10, n_jobs=1).fit(train[FEATURES], train["Survived"])
    bucket = settings.bucket_for(ENV)
    common = {"target": "Survived", "id_columns": ["PassengerId"]}
    save_model(
        model,
        store,
        bucket,
        "profiled",
        training_data=train,
        training_target=train["Survived"],
        **common,
    )
    save_model(model, store, bucket, "bare", **common)  # an older model: no profile
    sync_registry(warehouse, store, settings, ENV)
    datasets.write_titanic(warehouse, STEADY, 6_000, seed=5)
    shifted = datasets.titanic(6_000, seed=6)
    shifted["Fare"] = shifted["Fare"] * 4 + 50
    shifted.loc[np.arange(len(shifted)) % 10 == 0, "Embarked"] = "Z"
    warehouse.write(shifted, SHIFTED, "WRITE_TRUNCATE")
    yield warehouse, store
    warehouse.close()


def run(settings, warehouse, store, model, table, job_id, **options):
    spec = PredictSpec.parse(
        env=ENV,
        input_table=str(table),
        output_table=str(OUTPUT),
        model_name=model,
        settings=settings,
        **options,
    )
    return predict_table(spec, warehouse, store, settings, job_id)


def test_a_shifted_input_alerts_on_the_shifted_features_only(settings, stack):
    warehouse, store = stack
    steady = run(settings, warehouse, store, "profiled", STEADY, "job-steady")
    assert steady.shards == 3  # profiles of three shards, merged
    assert steady.monitoring["status"] == "ok", steady.monitoring
    assert steady.monitoring["rows"] == 6_000 and steady.monitoring["has_reference"]

    shifted = run(settings, warehouse, store, "profiled", SHIFTED, "job-shifted")
    summary = shifted.monitoring
    assert summary["status"] == "alert"
    flagged = {w["feature"] for w in summary["worst"] if w["status"] != "ok"}
    # The fare moved and a new port appeared; the model's output may follow the fare.
    assert (
        {"Fare", "Embarked"} <= flagged <= {"Fare", "Embarked", "__prediction__", "__probability__"}
    )

    rows = read_stats(warehouse, settings, ENV, "profiled", 1)
    by_job = {job["job_id"]: job for job in history(rows)}
    assert list(by_job) == ["job-steady", "job-shifted"]
    assert by_job["job-steady"]["status"] == "ok"
    features = {f["feature"]: f for f in by_job["job-shifted"]["features"]}
    assert set(FEATURES) <= set(features)
    assert features["Embarked"]["unseen_examples"] == ["Z"]
    assert features["Embarked"]["unseen_rate"] == pytest.approx(0.1, abs=0.002)
    for name in ("Pclass", "Sex", "SibSp", "Parch"):
        assert features[name]["status"] == "ok", features[name]


def test_a_model_without_a_profile_still_predicts_and_gets_counts(settings, stack):
    warehouse, store = stack
    result = run(settings, warehouse, store, "bare", STEADY, "job-bare")
    assert result.rows_written == 6_000
    assert result.monitoring["status"] == "ok" and not result.monitoring["has_reference"]
    rows = read_stats(warehouse, settings, ENV, "bare", 1)
    age = next(r for r in rows if r["feature"] == "Age")
    assert 0.1 < age["null_rate"] < 0.3 and age["psi"] is None


def test_stats_are_written_once_per_job_and_monitoring_can_be_switched_off(settings, stack):
    warehouse, store = stack
    run(settings, warehouse, store, "profiled", STEADY, "job-a")
    table = stats_table(settings, ENV)
    before = warehouse.count_rows(table)
    off = settings.model_copy(update={"monitoring": False})
    result = run(off, warehouse, store, "profiled", STEADY, "job-b")
    assert result.monitoring is None
    assert warehouse.count_rows(table) == before
    frame = warehouse.read_table(table).to_pandas()
    assert set(frame["job_id"]) == {"job-a"}
    assert not frame.duplicated(["job_id", "feature"]).any()
    profile = json.loads(frame.loc[frame["feature"] == "Fare", "profile"].iloc[0])
    assert sum(profile["bins"]) + profile["nulls"] == 6_000


def test_training_profile_is_in_the_saved_metadata(settings, stack):
    warehouse, store = stack
    meta = json.loads(store.read(settings.bucket_for(ENV), "profiled/v1/metadata.json"))
    assert set(meta["profile"]["features"]) >= set(FEATURES)
    assert "profile" not in json.loads(
        store.read(settings.bucket_for(ENV), "bare/v1/metadata.json")
    )
