"""predict_table over a real DuckDB file and a real model folder, for every kind of estimator."""

from __future__ import annotations

import io
import itertools

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from mlsys import datasets
from mlsys.artifacts import save_model
from mlsys.demo import titanic_pipeline
from mlsys.errors import (
    Cancelled,
    InvalidIdentifier,
    InvalidRequest,
    ModelFailed,
    ModelNotFound,
    SchemaMismatch,
    TableNotEmpty,
    TableNotFound,
)
from mlsys.ids import TableId
from mlsys.predict import PredictSpec, predict_table
from mlsys.registry import set_alias, sync_registry

pytestmark = pytest.mark.integration

ENV = "dev"
ROWS = 8_000
BATCH_ROWS = 500
PROJECT = "mlsys-local"
INPUT = TableId(PROJECT, "titanic", "passengers")
OUTPUT = TableId(PROJECT, "titanic", "predictions")
METADATA_COLUMNS = ["PredictionTimestamp", "ModelName", "ModelVersion", "JobId"]
NUMERIC = ["Pclass", "SibSp", "Parch", "Fare"]  # never missing
FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]


class ExplodingClassifier(LogisticRegression):
    """Works for two batches, then fails: a model that breaks in the middle of a job."""

    def predict_proba(self, X):
        self.calls_ = getattr(self, "calls_", 0) + 1
        if self.calls_ > 2:
            raise RuntimeError("model exploded on batch 3")
        return super().predict_proba(X)


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return datasets.titanic(3_000, seed=1)


@pytest.fixture(scope="module")
def forest(train):
    return titanic_pipeline(n_estimators=15, n_jobs=1).fit(train[FEATURES], train["Survived"])


@pytest.fixture
def settings(settings):
    """Small batches, so a job of ROWS rows has many of them."""
    return settings.model_copy(update={"batch_rows": BATCH_ROWS})


@pytest.fixture
def warehouse(warehouse):
    datasets.write_titanic(warehouse, INPUT, ROWS, seed=2)
    return warehouse


@pytest.fixture
def passengers(warehouse) -> pd.DataFrame:
    """The input table as the warehouse has it, in id order."""
    frame = warehouse.read_table(INPUT).to_pandas()
    return frame.sort_values("PassengerId").reset_index(drop=True)


def register(warehouse, store, settings, model, name, **save):
    saved = save_model(model, store, settings.bucket_for(ENV), name, **save)
    sync_registry(warehouse, store, settings, ENV)
    return saved


def spec(settings, model_name, output=OUTPUT, **options) -> PredictSpec:
    return PredictSpec.parse(
        env=ENV,
        input_table=str(options.pop("input_table", INPUT)),
        output_table=str(output),
        model_name=model_name,
        settings=settings,
        **options,
    )


def run(warehouse, store, settings, model_name, job_id="job-1", output=OUTPUT, **options):
    progress = options.pop("progress", None)
    cancelled = options.pop("cancelled", None)
    return predict_table(
        spec(settings, model_name, output, **options),
        warehouse,
        store,
        settings,
        job_id,
        progress=progress,
        cancelled=cancelled,
    )


def output_frame(warehouse, table=OUTPUT) -> pd.DataFrame:
    frame = warehouse.read_table(table).to_pandas()
    return frame.sort_values(["JobId", "PassengerId"]).reset_index(drop=True)


def staged_files(settings) -> list:
    staging = settings.staging_dir
    return sorted(staging.rglob("*")) if staging.exists() else []


def assert_metadata_columns(schema: pa.Schema, frame: pd.DataFrame, model: str, job_id: str):
    ts = schema.field("PredictionTimestamp").type
    assert pa.types.is_timestamp(ts) and ts.unit == "us" and ts.tz is not None
    for column in ("ModelName", "ModelVersion", "JobId"):
        assert pa.types.is_string(schema.field(column).type) or pa.types.is_large_string(
            schema.field(column).type
        )
    name, version = model.split("/")
    assert (frame["ModelName"] == name).all()
    assert (frame["ModelVersion"] == version).all()
    assert (frame["JobId"] == job_id).all()
    assert frame["PredictionTimestamp"].notna().all()


# --- every kind of estimator ----------------------------------------------------------------
def test_random_forest_pipeline_with_metadata(warehouse, store, settings, forest, passengers):
    register(
        warehouse,
        store,
        settings,
        forest,
        "titanic-survival",
        target="Survived",
        id_columns=["PassengerId"],
    )
    result = run(warehouse, store, settings, "titanic-survival", job_id="rf-job")
    assert (result.rows_written, result.model, result.output_table) == (
        ROWS,
        "titanic-survival/v1",
        str(OUTPUT),
    )

    schema = warehouse.schema(OUTPUT)
    assert schema.names == ["PassengerId", "Survived", "PredictionProbability", *METADATA_COLUMNS]
    assert schema.field("PassengerId").type == pa.int64()
    assert schema.field("Survived").type == pa.int64()
    assert schema.field("PredictionProbability").type == pa.float64()
    out = output_frame(warehouse)
    assert_metadata_columns(schema, out, "titanic-survival/v1", "rf-job")

    assert out["PassengerId"].tolist() == passengers["PassengerId"].tolist()
    expected = forest.predict(passengers[FEATURES])
    proba = forest.predict_proba(passengers[FEATURES]).max(axis=1)
    np.testing.assert_array_equal(out["Survived"].to_numpy(), expected)
    np.testing.assert_allclose(out["PredictionProbability"].to_numpy(), proba, rtol=1e-12)
    assert 0.1 < out["Survived"].mean() < 0.7  # a real model, not a constant


def test_regressor_has_no_probability_column(warehouse, store, settings, train, passengers):
    ridge = Ridge(alpha=1.0).fit(train[["Pclass", "SibSp", "Parch"]], train["Fare"])
    register(
        warehouse,
        store,
        settings,
        ridge,
        "fare",
        target="PredictedFare",
        id_columns=["PassengerId"],
    )
    run(warehouse, store, settings, "fare", job_id="ridge-job")

    schema = warehouse.schema(OUTPUT)
    assert schema.names == ["PassengerId", "PredictedFare", *METADATA_COLUMNS]
    assert schema.field("PredictedFare").type == pa.float64()
    out = output_frame(warehouse)
    assert_metadata_columns(schema, out, "fare/v1", "ridge-job")
    expected = ridge.predict(passengers[["Pclass", "SibSp", "Parch"]])
    np.testing.assert_allclose(out["PredictedFare"].to_numpy(), expected, rtol=1e-12)


def test_classifier_without_predict_proba_has_null_probability(
    warehouse, store, settings, train, passengers
):
    svc = LinearSVC(random_state=0).fit(train[NUMERIC], train["Survived"])
    assert not hasattr(svc, "predict_proba")
    register(warehouse, store, settings, svc, "svc", target="Survived", id_columns=["PassengerId"])
    run(warehouse, store, settings, "svc", job_id="svc-job")

    schema = warehouse.schema(OUTPUT)
    assert schema.names == ["PassengerId", "Survived", "PredictionProbability", *METADATA_COLUMNS]
    assert schema.field("PredictionProbability").type == pa.float64()
    out = output_frame(warehouse)
    assert out["PredictionProbability"].isna().all()
    np.testing.assert_array_equal(out["Survived"].to_numpy(), svc.predict(passengers[NUMERIC]))


def test_multiclass_with_string_classes(warehouse, store, settings, train, passengers):
    """Three string classes: the ticket class, named, told apart by the fare."""
    names = {1: "first", 2: "second", 3: "third"}
    x_columns = ["Fare", "SibSp", "Parch"]
    clf = LogisticRegression(max_iter=2000).fit(
        np.log1p(train[x_columns]), train["Pclass"].map(names)
    )
    model = make_pipeline(FunctionTransformer(np.log1p, feature_names_out="one-to-one"), clf)
    model.fit(train[x_columns], train["Pclass"].map(names))
    assert list(model.classes_) == ["first", "second", "third"]
    register(
        warehouse,
        store,
        settings,
        model,
        "ticket-class",
        target="TicketClass",
        id_columns=["PassengerId"],
    )
    run(warehouse, store, settings, "ticket-class", job_id="class-job")

    schema = warehouse.schema(OUTPUT)
    assert schema.names == [
        "PassengerId",
        "TicketClass",
        "PredictionProbability",
        *METADATA_COLUMNS,
    ]
    assert pa.types.is_string(schema.field("TicketClass").type) or pa.types.is_large_string(
        schema.field("TicketClass").type
    )
    out = output_frame(warehouse)
    expected = model.predict(passengers[x_columns])
    assert out["TicketClass"].tolist() == expected.tolist()
    assert set(out["TicketClass"]) == {"first", "second", "third"}
    proba = model.predict_proba(passengers[x_columns]).max(axis=1)
    np.testing.assert_allclose(out["PredictionProbability"].to_numpy(), proba, rtol=1e-12)
    assert (out["PredictionProbability"] > 1 / 3).all()


def test_model_registered_without_metadata_json(warehouse, store, settings, forest, passengers):
    """The seed's way: gcs_put_pickle(model, bucket, 'name/v1/model.pkl') and nothing else."""
    buffer = io.BytesIO()
    joblib.dump(forest, buffer)
    bucket = settings.bucket_for(ENV)
    store.write(bucket, "bare-forest/v1/model.pkl", buffer.getvalue())
    sync_registry(warehouse, store, settings, ENV)

    run(warehouse, store, settings, "bare-forest", job_id="bare-job", id_columns=["PassengerId"])
    schema = warehouse.schema(OUTPUT)
    assert schema.names[0] == "PassengerId"  # from the request
    assert schema.names[-4:] == METADATA_COLUMNS
    target = schema.names[1]
    out = output_frame(warehouse)
    np.testing.assert_array_equal(out[target].to_numpy(), forest.predict(passengers[FEATURES]))


def test_without_id_columns_the_output_keeps_the_inputs_other_columns(
    warehouse, store, settings, forest
):
    """Like Vertex AI: no id columns declared, so every non-feature input column is copied
    (the input's own Survived gives way to the prediction); id_columns narrows it."""
    register(warehouse, store, settings, forest, "no-ids", target="Survived")
    run(warehouse, store, settings, "no-ids")
    names = warehouse.schema(OUTPUT).names
    assert names == ["PassengerId", "Name", "Ticket", "Cabin", "Survived",
                     "PredictionProbability", *METADATA_COLUMNS]  # fmt: skip
    out = output_frame(warehouse).sort_values("PassengerId")
    passengers = warehouse.read_table(INPUT).to_pandas().sort_values("PassengerId")
    assert out["Name"].tolist() == passengers["Name"].tolist()
    np.testing.assert_array_equal(out["Survived"].to_numpy(), forest.predict(passengers[FEATURES]))
    narrowed = OUTPUT.with_table("narrowed")
    run(warehouse, store, settings, "no-ids", output=narrowed, id_columns=["PassengerId"])
    assert warehouse.schema(narrowed).names[:2] == ["PassengerId", "Survived"]


def test_an_input_of_only_features_or_of_hundreds_of_columns_asks_for_id_columns(
    warehouse, store, settings, forest
):
    register(warehouse, store, settings, forest, "no-ids", target="Survived")
    only_features = INPUT.with_table("only_features")
    warehouse.write(datasets.titanic(50)[FEATURES], only_features, "WRITE_TRUNCATE")
    with pytest.raises(InvalidRequest, match="only the model's feature columns") as info:
        run(warehouse, store, settings, "no-ids", input_table=only_features)
    assert "id_columns" in str(info.value)
    wide = datasets.titanic(50)
    wide = pd.concat([wide, pd.DataFrame({f"extra_{i}": range(50) for i in range(300)})], axis=1)
    wide_table = INPUT.with_table("wide")
    warehouse.write(wide, wide_table, "WRITE_TRUNCATE")
    with pytest.raises(InvalidRequest, match="304 columns besides") as info:
        run(warehouse, store, settings, "no-ids", input_table=wide_table)
    assert "Pass id_columns" in str(info.value)
    assert not warehouse.exists(OUTPUT)
    run(warehouse, store, settings, "no-ids", input_table=wide_table, id_columns=["PassengerId"])
    assert warehouse.count_rows(OUTPUT) == 50


# --- shards, progress, cancel, failure ----------------------------------------------------------
def test_several_shards_equal_one_shard_row_for_row(warehouse, store, settings, forest):
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    one = run(warehouse, store, settings, "m", job_id="one", output=OUTPUT, shards=1)
    three_table = OUTPUT.with_table("predictions_sharded")
    three = run(warehouse, store, settings, "m", job_id="three", output=three_table, shards=3)
    assert (one.shards, three.shards) == (1, 3)
    assert one.rows_written == three.rows_written == ROWS
    columns = ["PassengerId", "Survived", "PredictionProbability"]
    a = output_frame(warehouse, OUTPUT)[columns]
    b = output_frame(warehouse, three_table)[columns]
    pd.testing.assert_frame_equal(a, b)


def test_progress_adds_up_to_the_rows(warehouse, store, settings, forest):
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    seen: list[int] = []
    result = run(warehouse, store, settings, "m", shards=2, progress=seen.append)
    assert sum(seen) == ROWS == result.rows_written
    assert len(seen) >= ROWS // BATCH_ROWS
    assert all(0 < n <= BATCH_ROWS for n in seen)


def test_workers_run_shards_in_processes_row_for_row(warehouse, store, settings, forest):
    """--workers 2: two shards on two processes from one snapshot, the same rows as one."""
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    one = run(warehouse, store, settings, "m", job_id="one", shards=1)
    seen: list[int] = []
    pooled_table = OUTPUT.with_table("predictions_pooled")
    pooled = predict_table(
        spec(settings, "m", pooled_table),
        warehouse,
        store,
        settings,
        "pooled",
        progress=seen.append,
        workers=2,
    )
    assert (one.shards, pooled.shards) == (1, 2)
    assert sum(seen) == pooled.rows_written == ROWS
    columns = ["PassengerId", "Survived", "PredictionProbability"]
    pd.testing.assert_frame_equal(
        output_frame(warehouse, OUTPUT)[columns], output_frame(warehouse, pooled_table)[columns]
    )
    assert staged_files(settings) == []


def test_a_failing_pool_process_leaves_the_output_as_it_was(warehouse, store, settings, train):
    model = ExplodingClassifier(max_iter=200).fit(train[NUMERIC], train["Survived"])
    register(warehouse, store, settings, model, "boom", id_columns=["PassengerId"])
    with pytest.raises(ModelFailed, match="exploded"):
        predict_table(spec(settings, "boom"), warehouse, store, settings, "boom", workers=2)
    assert not warehouse.exists(OUTPUT)
    assert staged_files(settings) == []


def _cancel_on_call(n: int):
    calls = itertools.count(1)
    return lambda: next(calls) >= n


@pytest.mark.parametrize("cancel_on_call", [3, ROWS // BATCH_ROWS + 1])
def test_cancel_leaves_no_output_and_no_staging(warehouse, store, settings, forest, cancel_on_call):
    """Cancel mid-stream, or after the last batch but before the commit."""
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    seen: list[int] = []
    with pytest.raises(Cancelled):
        run(
            warehouse,
            store,
            settings,
            "m",
            job_id="cancelled-job",
            progress=seen.append,
            cancelled=_cancel_on_call(cancel_on_call),
        )
    assert sum(seen) == (cancel_on_call - 1) * BATCH_ROWS
    assert not warehouse.exists(OUTPUT)
    assert staged_files(settings) == []


def test_cancel_keeps_the_previous_rows(warehouse, store, settings, forest):
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    run(warehouse, store, settings, "m", job_id="first")
    before = output_frame(warehouse)
    for disposition in ("WRITE_APPEND", "WRITE_TRUNCATE"):
        with pytest.raises(Cancelled):
            run(
                warehouse,
                store,
                settings,
                "m",
                job_id="second",
                write_disposition=disposition,
                cancelled=_cancel_on_call(5),
            )
        pd.testing.assert_frame_equal(output_frame(warehouse), before)
        assert staged_files(settings) == []


def test_a_model_that_fails_mid_job_leaves_the_output_as_it_was(
    warehouse, store, settings, train, forest
):
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    run(warehouse, store, settings, "m", job_id="good")
    before = output_frame(warehouse)
    boom = ExplodingClassifier(max_iter=1000).fit(train[NUMERIC], train["Survived"])
    register(
        warehouse, store, settings, boom, "boom", target="Survived", id_columns=["PassengerId"]
    )
    seen: list[int] = []
    with pytest.raises(ModelFailed, match="ExplodingClassifier raised RuntimeError") as info:
        run(warehouse, store, settings, "boom", job_id="bad", progress=seen.append)
    assert "model exploded on batch 3" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)  # the traceback stays for the log
    assert sum(seen) == 2 * BATCH_ROWS  # it did get going
    pd.testing.assert_frame_equal(output_frame(warehouse), before)
    assert staged_files(settings) == []


# --- write dispositions ---------------------------------------------------------------------
def test_append_adds_a_job_and_truncate_replaces(warehouse, store, settings, forest):
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    run(warehouse, store, settings, "m", job_id="a")
    run(warehouse, store, settings, "m", job_id="b")
    out = output_frame(warehouse)
    assert len(out) == 2 * ROWS
    assert out.groupby("JobId").size().to_dict() == {"a": ROWS, "b": ROWS}
    result = run(warehouse, store, settings, "m", job_id="c", write_disposition="WRITE_TRUNCATE")
    assert result.rows_written == ROWS
    assert set(output_frame(warehouse)["JobId"]) == {"c"}


def test_write_empty(warehouse, store, settings, forest):
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    run(warehouse, store, settings, "m", job_id="a", write_disposition="WRITE_EMPTY")
    before = output_frame(warehouse)
    assert len(before) == ROWS
    with pytest.raises(TableNotEmpty, match="WRITE_EMPTY"):
        run(warehouse, store, settings, "m", job_id="b", write_disposition="WRITE_EMPTY")
    pd.testing.assert_frame_equal(output_frame(warehouse), before)
    assert staged_files(settings) == []


def test_append_to_a_table_with_other_columns_is_refused(warehouse, store, settings, forest):
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    warehouse.write(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), OUTPUT, "WRITE_APPEND")
    with pytest.raises(SchemaMismatch, match="exists with columns") as caught:
        run(warehouse, store, settings, "m")
    assert "WRITE_TRUNCATE" in str(caught.value)  # says how to fix it
    assert warehouse.read_table(OUTPUT).num_rows == 2
    assert staged_files(settings) == []


def test_truncate_replaces_a_table_with_other_columns(warehouse, store, settings, forest):
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    warehouse.write(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), OUTPUT, "WRITE_APPEND")
    run(warehouse, store, settings, "m", write_disposition="WRITE_TRUNCATE")
    assert warehouse.schema(OUTPUT).names[:2] == ["PassengerId", "Survived"]
    assert warehouse.count_rows(OUTPUT) == ROWS


# --- what is refused before any work starts --------------------------------------------------
def test_unknown_input_table(warehouse, store, settings, forest):
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    with pytest.raises(TableNotFound, match="nope"):
        run(warehouse, store, settings, "m", input_table=INPUT.with_table("nope"))
    assert not warehouse.exists(OUTPUT)
    assert staged_files(settings) == []


def test_missing_feature_column_is_named(warehouse, store, settings, forest, passengers):
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    no_fare = INPUT.with_table("no_fare")
    warehouse.write(passengers.drop(columns=["Fare"]), no_fare, "WRITE_TRUNCATE")
    with pytest.raises(SchemaMismatch) as caught:
        run(warehouse, store, settings, "m", input_table=no_fare)
    assert "'Fare'" in str(caught.value)
    assert "lacks" in str(caught.value)
    assert not warehouse.exists(OUTPUT)
    with pytest.raises(SchemaMismatch, match="'CustomerId'"):
        run(warehouse, store, settings, "m", id_columns=["CustomerId"])


def test_unknown_model_version_or_alias(warehouse, store, settings, forest):
    register(warehouse, store, settings, forest, "m", target="Survived", id_columns=["PassengerId"])
    with pytest.raises(ModelNotFound, match="Registered models: m"):
        run(warehouse, store, settings, "other")
    with pytest.raises(ModelNotFound, match="no version v9") as caught:
        run(warehouse, store, settings, "m", model_version="v9")
    assert "v1" in str(caught.value)  # lists what exists
    with pytest.raises(ModelNotFound, match="champion"):
        run(warehouse, store, settings, "m", model_version="champion")
    set_alias(warehouse, settings, ENV, "m", "champion", "v1")
    assert run(warehouse, store, settings, "m", model_version="@champion").model == "m/v1"
    with pytest.raises(InvalidIdentifier):
        run(warehouse, store, settings, "../m")


def test_nothing_registered(warehouse, store, settings):
    with pytest.raises(ModelNotFound, match="Nothing is registered"):
        run(warehouse, store, settings, "titanic-survival")
