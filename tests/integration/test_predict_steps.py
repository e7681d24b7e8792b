"""Each step of the predict pipeline on its own, in-process: a spec's validation, the checks of
prepare, the output schema, one batch, the shard count, the commit and a whole cancelled run,
over a DuckDB warehouse in a temp folder and a tiny model. Fast enough to run often (and under
a mutation tester)."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from datetime import UTC, datetime

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.svm import LinearSVC

from mlsys.artifacts import MODEL_CACHE, save_model
from mlsys.errors import (
    Cancelled,
    InvalidIdentifier,
    InvalidRequest,
    MetadataPending,
    ProtectedTable,
    SchemaMismatch,
    TableNotEmpty,
    UnknownEnvironment,
)
from mlsys.ids import TableId
from mlsys.predict import (
    MAX_ID_COLUMNS,
    PredictSpec,
    PreparedPredict,
    build_output_schema,
    commit_job,
    load_model,
    output_schema_for,
    plan_shards,
    predict_batch,
    predict_table,
    prepare_predict,
    run_shard,
    shards_for_slots,
)
from mlsys.prediction_stats import read_stats
from mlsys.registry import sync_registry
from tests.models import FEATURES, ScriptedClassifier

pytestmark = pytest.mark.integration

ENV = "dev"
PROJECT = "mlsys-local"
INPUT = TableId(PROJECT, "titanic", "passengers")
OUTPUT = TableId(PROJECT, "titanic", "predictions")
ROWS = 10
BATCH_ROWS = 4
METADATA = ["PredictionTimestamp", "ModelName", "ModelVersion", "JobId"]
TIMESTAMP = pa.timestamp("us", tz="UTC")


def passengers(rows: int = ROWS, **extra) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "PassengerId": np.arange(1, rows + 1, dtype="int64"),
            "Name": [f"passenger {i}" for i in range(rows)],
            "Sex": ["female" if i % 3 == 0 else "male" for i in range(rows)],
            "Pclass": np.array([1 + i % 3 for i in range(rows)], dtype="int64"),
        }
    )
    for column, value in extra.items():
        frame[column] = value
    return frame


@pytest.fixture
def settings(settings):
    """Batches of 4 rows, so the 10-row input streams in three."""
    return settings.model_copy(update={"batch_rows": BATCH_ROWS})


@pytest.fixture
def warehouse(warehouse):
    warehouse.write(passengers(), INPUT, "WRITE_TRUNCATE")
    return warehouse


@pytest.fixture
def classifier(warehouse, store, settings) -> ScriptedClassifier:
    """`clf` v1: a classifier of Sex and Pclass with classes 0 and 1 and a training profile."""
    train = passengers(30)
    model = ScriptedClassifier().fit(train[FEATURES])
    save_model(model, store, settings.bucket_for(ENV), "clf", training_data=train[FEATURES])
    sync_registry(warehouse, store, settings, ENV)
    return model


def parse(settings, **options) -> PredictSpec:
    values = {
        "env": ENV,
        "input_table": str(INPUT),
        "output_table": str(OUTPUT),
        "model_name": "clf",
    }
    return PredictSpec.parse(settings=settings, **(values | options))


def prepare(warehouse, settings, store=None, **options):
    return prepare_predict(parse(settings, **options), warehouse, settings, store)


# --- PredictSpec.parse ----------------------------------------------------------------------


def test_a_spec_parses_its_defaults_and_a_comma_separated_id_list(settings):
    spec = parse(settings, id_columns=" PassengerId, Name,, ")

    assert spec.env == ENV
    assert spec.input_table == INPUT and spec.output_table == OUTPUT
    assert spec.model.name == "clf" and str(spec.model.version) == "latest"
    assert spec.id_columns == ("PassengerId", "Name")
    assert spec.write_disposition == "WRITE_APPEND"
    assert spec.shards is None
    assert spec.mode == "full" and spec.key_columns is None
    assert parse(settings).id_columns is None
    assert parse(settings, id_columns=[]).id_columns is None


def test_a_spec_allows_at_most_16_id_columns(settings):
    columns = [f"c{i}" for i in range(MAX_ID_COLUMNS + 1)]

    assert len(parse(settings, id_columns=columns[:-1]).id_columns) == MAX_ID_COLUMNS
    with pytest.raises(InvalidRequest, match="At most 16 id_columns are allowed"):
        parse(settings, id_columns=columns)
    with pytest.raises(InvalidRequest, match="At most 16 id_columns are allowed"):
        parse(settings, id_columns=",".join(columns))
    with pytest.raises(InvalidIdentifier):
        parse(settings, id_columns=["PassengerId", "a;drop"])


@pytest.mark.parametrize("shards", [0, -1, 65])
def test_shards_out_of_bounds_are_refused_with_the_bound(settings, shards):
    with pytest.raises(InvalidRequest) as caught:
        parse(settings, shards=shards)
    assert str(caught.value) == "shards must be between 1 and 64 (MLSYS_MAX_SHARDS)."


def test_shards_within_bounds_are_kept_as_numbers(settings):
    assert parse(settings, shards=1).shards == 1
    assert parse(settings, shards=64).shards == 64
    assert parse(settings, shards="3").shards == 3
    small = settings.model_copy(update={"max_shards": 2})
    with pytest.raises(InvalidRequest, match="between 1 and 2"):
        parse(small, shards=3)


def test_a_spec_names_an_unknown_environment_disposition_or_mode(settings):
    with pytest.raises(UnknownEnvironment, match="Unknown environment 'qa'"):
        parse(settings, env="qa")
    with pytest.raises(InvalidRequest, match="Unknown write disposition 'WRITE_OVER'"):
        parse(settings, write_disposition="WRITE_OVER")
    with pytest.raises(InvalidRequest, match="Unknown mode 'partial'"):
        parse(settings, mode="partial")
    with pytest.raises(InvalidRequest, match="key_columns only applies"):
        parse(settings, key_columns=["PassengerId"])


def test_a_spec_refuses_mlsys_own_tables_and_writing_over_its_input(settings):
    registry = f"{PROJECT}.{settings.dataset_for(ENV)}.registry"
    with pytest.raises(ProtectedTable, match="input_table .* a dataset mlsys keeps"):
        parse(settings, input_table=registry)
    with pytest.raises(ProtectedTable, match="output_table .* a dataset mlsys keeps"):
        parse(settings, output_table=registry)
    with pytest.raises(InvalidRequest, match="is the input_table"):
        parse(settings, output_table=str(INPUT))


def test_a_full_spec_round_trips_through_json_without_mode_keys(settings):
    spec = parse(settings, id_columns=["PassengerId"], shards=2, write_disposition="WRITE_EMPTY")

    data = spec.to_json()
    assert data == {
        "env": ENV,
        "input_table": str(INPUT),
        "output_table": str(OUTPUT),
        "model_name": "clf",
        "model_version": "latest",
        "id_columns": ["PassengerId"],
        "write_disposition": "WRITE_EMPTY",
        "shards": 2,
    }
    assert PredictSpec.from_json(data, settings) == spec
    assert parse(settings).to_json()["id_columns"] is None


def test_an_incremental_spec_round_trips_and_a_schedules_fields_are_ignored(settings):
    spec = parse(settings, mode="incremental", key_columns="PassengerId", model_version=2)

    data = spec.to_json()
    assert data["mode"] == "incremental" and data["key_columns"] == ["PassengerId"]
    assert data["model_version"] == "v2"
    scheduled = data | {"schedule_id": "nightly", "trigger": "beat"}
    assert PredictSpec.from_json(scheduled, settings) == spec
    assert parse(settings, mode="incremental").to_json()["key_columns"] is None


# --- the output schema ----------------------------------------------------------------------


def test_a_classifiers_output_has_ids_labels_probability_and_metadata():
    inputs = pa.schema([("PassengerId", pa.int32()), ("Name", pa.string())])

    schema = build_output_schema(
        inputs, ["Name", "PassengerId"], "Survived", "classification", [0, 1]
    )

    assert schema.names == ["Name", "PassengerId", "Survived", "PredictionProbability", *METADATA]
    assert schema.field("PassengerId").type == pa.int32()
    assert schema.field("Survived").type == pa.int64()
    assert schema.field("PredictionProbability").type == pa.float64()
    assert schema.field("PredictionTimestamp").type == TIMESTAMP
    for column in ("ModelName", "ModelVersion", "JobId"):
        assert schema.field(column).type == pa.string()


def test_a_regressors_output_has_a_float_prediction_and_no_probability():
    inputs = pa.schema([("PassengerId", pa.int64())])

    schema = build_output_schema(inputs, ["PassengerId"], "Fare", "regression", None)

    assert schema.names == ["PassengerId", "Fare", *METADATA]
    assert schema.field("Fare").type == pa.float64()


# --- prepare --------------------------------------------------------------------------------


def test_prepare_pins_the_model_and_defaults_the_ids_to_the_other_columns(
    warehouse, settings, classifier
):
    prepared = prepare(warehouse, settings)

    assert prepared.features == FEATURES
    assert prepared.id_columns == ["PassengerId", "Name"]
    assert prepared.target == "prediction"
    assert prepared.task == "classification"
    assert prepared.rows_total == ROWS
    assert prepared.env == ENV
    assert prepared.model.ref == "clf/v1"
    assert prepared.output_schema.names == [
        "PassengerId",
        "Name",
        "prediction",
        "PredictionProbability",
        *METADATA,
    ]
    assert prepared.output_schema.field("prediction").type == pa.int64()
    assert prepared.reference_profile is not None
    quiet = settings.model_copy(update={"monitoring": False})
    assert prepare(warehouse, quiet).reference_profile is None


def test_a_prepared_job_round_trips_through_its_record_and_is_checked_again(
    warehouse, settings, classifier
):
    prepared = prepare(warehouse, settings, id_columns=["PassengerId"], shards=2)

    record = json.loads(json.dumps(prepared.to_json()))  # as a job record in Redis holds it
    assert PreparedPredict.from_json(record, settings) == prepared
    record["spec"]["output_table"] = f"{PROJECT}.{settings.dataset_for(ENV)}.registry"
    with pytest.raises(ProtectedTable, match="output_table"):
        PreparedPredict.from_json(record, settings)


def test_default_ids_leave_out_the_outputs_own_column_names(warehouse, settings, classifier):
    warehouse.write(passengers(ModelName="x", prediction=1), INPUT, "WRITE_TRUNCATE")

    assert prepare(warehouse, settings).id_columns == ["PassengerId", "Name"]
    with pytest.raises(InvalidRequest) as caught:
        prepare(warehouse, settings, id_columns=["PassengerId", "prediction", "ModelName"])
    assert str(caught.value) == "id_columns ['ModelName', 'prediction'] clash with output columns."


def test_prepare_takes_the_target_and_ids_the_model_was_saved_with(warehouse, store, settings):
    model = ScriptedClassifier().fit(passengers()[FEATURES])
    bucket = settings.bucket_for(ENV)
    save_model(model, store, bucket, "named", target="Survived", id_columns=["Name"])
    sync_registry(warehouse, store, settings, ENV)

    prepared = prepare(warehouse, settings, model_name="named")

    assert (prepared.target, prepared.id_columns) == ("Survived", ["Name"])
    assert prepared.output_schema.names[:3] == ["Name", "Survived", "PredictionProbability"]


def test_an_input_of_only_features_is_named_when_no_ids_are_given(warehouse, settings, classifier):
    warehouse.write(passengers()[FEATURES], INPUT, "WRITE_TRUNCATE")

    with pytest.raises(InvalidRequest, match=f"Input table {INPUT} has only the model's feature"):
        prepare(warehouse, settings)


def test_prepare_names_the_missing_feature_and_id_columns(warehouse, settings, classifier):
    warehouse.write(passengers().drop(columns=["Pclass"]), INPUT, "WRITE_TRUNCATE")
    with pytest.raises(SchemaMismatch) as caught:
        prepare(warehouse, settings, id_columns=["PassengerId"])
    assert caught.value.message == (
        f"Input table {INPUT} lacks column(s) ['Pclass'] that clf/v1 needs."
    )
    assert "['Sex', 'Pclass']" in caught.value.hint and "['PassengerId']" in caught.value.hint

    warehouse.write(passengers(), INPUT, "WRITE_TRUNCATE")
    with pytest.raises(SchemaMismatch, match=r"lacks column\(s\) \['CustomerId'\]"):
        prepare(warehouse, settings, id_columns=["CustomerId", "PassengerId"])


def test_an_output_with_other_columns_is_refused_unless_truncated(warehouse, settings, classifier):
    warehouse.write(pd.DataFrame({"PassengerId": [1], "score": [0.5]}), OUTPUT, "WRITE_TRUNCATE")

    with pytest.raises(SchemaMismatch) as caught:
        prepare(warehouse, settings)
    assert str(caught.value).startswith(
        f"Output table {OUTPUT} exists with columns ['PassengerId', 'score'], but clf writes "
    )
    assert caught.value.hint == (
        "Choose a new output table, or write_disposition WRITE_TRUNCATE to replace it."
    )
    assert prepare(warehouse, settings, write_disposition="WRITE_TRUNCATE").rows_total == ROWS


def test_write_empty_refuses_an_output_with_rows_only(warehouse, store, settings, classifier):
    # The same columns in another order are the same table.
    prepared = prepare(warehouse, settings, id_columns=["PassengerId"])
    empty = prepared.output_schema.empty_table()
    warehouse.write(empty.select(list(reversed(empty.column_names))), OUTPUT, "WRITE_TRUNCATE")

    assert prepare(warehouse, settings, id_columns=["PassengerId"], write_disposition="WRITE_EMPTY")
    run(warehouse, store, settings, id_columns=["PassengerId"])
    with pytest.raises(TableNotEmpty) as caught:
        prepare(warehouse, settings, id_columns=["PassengerId"], write_disposition="WRITE_EMPTY")
    assert caught.value.message == (
        f"Output table {OUTPUT} already has rows and write_disposition is WRITE_EMPTY."
    )
    assert caught.value.hint == "Use WRITE_APPEND or WRITE_TRUNCATE, or another table."
    assert prepare(warehouse, settings, id_columns=["PassengerId"]).rows_total == ROWS


def test_incremental_keys_must_be_id_columns(warehouse, settings, classifier):
    with pytest.raises(InvalidRequest, match=r"key_columns \['Sex'\] are not id columns"):
        prepare(warehouse, settings, mode="incremental", key_columns=["Sex"])
    assert prepare(warehouse, settings, mode="incremental", key_columns=["Name"]).rows_total == ROWS


# --- the loaded model's schema, one batch ---------------------------------------------------


def test_the_loaded_model_keeps_the_declared_schema_when_it_agrees(
    warehouse, store, settings, classifier
):
    prepared = prepare(warehouse, settings, store)
    model = load_model(prepared.model, store, settings)

    assert output_schema_for(prepared, model, warehouse) == prepared.output_schema


def test_a_model_of_another_task_than_declared_reshapes_and_rechecks_the_output(
    warehouse, settings, classifier
):
    prepared = prepare(warehouse, settings)
    regressor = LinearRegression().fit(passengers()[["Pclass"]], [1.0] * ROWS)
    string_classes = ScriptedClassifier().fit(passengers()[FEATURES])
    string_classes.classes_ = np.array(["died", "survived"], dtype=object)

    schema = output_schema_for(prepared, regressor, warehouse)
    assert schema.names == ["PassengerId", "Name", "prediction", *METADATA]
    assert schema.field("prediction").type == pa.float64()
    assert schema.field("PassengerId").type == prepared.output_schema.field("PassengerId").type
    strings = output_schema_for(prepared, string_classes, warehouse)
    assert strings.names == prepared.output_schema.names
    assert strings.field("prediction").type == pa.string()

    # An output that fits what metadata declared does not fit what the model writes.
    warehouse.write(prepared.output_schema.empty_table(), OUTPUT, "WRITE_TRUNCATE")
    with pytest.raises(SchemaMismatch, match="exists with columns"):
        output_schema_for(prepared, regressor, warehouse)
    assert output_schema_for(prepared, string_classes, warehouse) == strings


def test_a_batch_carries_ids_labels_probabilities_and_the_jobs_metadata(
    warehouse, settings, classifier
):
    prepared = prepare(warehouse, settings)
    schema = prepared.output_schema
    batch = warehouse.read_table(INPUT).to_batches()[0]

    out = predict_batch(classifier, batch, prepared, schema, "job-7")

    frame = batch.to_pandas()
    proba = classifier.predict_proba(frame[FEATURES])
    assert out.schema == schema
    assert out.column("PassengerId").to_pylist() == frame["PassengerId"].tolist()
    assert out.column("Name").to_pylist() == frame["Name"].tolist()
    assert out.column("prediction").to_pylist() == proba.argmax(axis=1).tolist()
    assert out.column("PredictionProbability").to_pylist() == pytest.approx(proba.max(axis=1))
    assert set(out.column("ModelName").to_pylist()) == {"clf"}
    assert set(out.column("ModelVersion").to_pylist()) == {"v1"}
    assert set(out.column("JobId").to_pylist()) == {"job-7"}
    assert out.column("PredictionTimestamp").null_count == 0


@pytest.fixture
def tokyo(monkeypatch):
    """This process nine hours ahead of UTC (as a machine's local zone may be)."""
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_batch_is_stamped_in_utc_whatever_the_local_zone(warehouse, settings, classifier, tokyo):
    prepared = prepare(warehouse, settings)
    batch = warehouse.read_table(INPUT).to_batches()[0]

    before = datetime.now(UTC)
    out = predict_batch(classifier, batch, prepared, prepared.output_schema, "job-9")
    after = datetime.now(UTC)

    (stamp,) = set(out.column("PredictionTimestamp").to_pylist())
    assert before <= stamp <= after


def test_a_classifier_without_probabilities_writes_null_probabilities(
    warehouse, settings, classifier
):
    prepared = prepare(warehouse, settings)
    frame = passengers()
    svc = LinearSVC().fit(pd.get_dummies(frame[FEATURES]).astype(float), [0, 1] * (ROWS // 2))
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)

    class Encoded:
        """LinearSVC over one-hot features: predicts, has no predict_proba."""

        classes_ = svc.classes_

        def predict(self, X):
            return svc.predict(pd.get_dummies(X).astype(float)[svc.feature_names_in_])

    out = predict_batch(Encoded(), batch, prepared, prepared.output_schema, "job-8")

    assert out.column("PredictionProbability").null_count == ROWS
    assert out.column("prediction").null_count == 0


# --- shards, commit, a whole run ------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "workers", "shards", "expected"),
    [
        (10, 1, None, None),  # one process: the spec's or automatic count
        (10, 3, None, 2),  # 10 rows make two full batches of 4: two processes get one each
        (10, 2, None, 2),
        (7, 3, None, None),  # one full batch: not worth a second process
        (8, 2, 5, None),  # the spec's count wins
    ],
)
def test_local_runs_shard_per_process_once_each_gets_a_full_batch(
    warehouse, settings, classifier, rows, workers, shards, expected
):
    warehouse.write(passengers(rows), INPUT, "WRITE_TRUNCATE")
    prepared = prepare(warehouse, settings, shards=shards)

    assert shards_for_slots(prepared, settings, workers) == expected


def test_slot_shards_keep_the_automatic_count_when_higher_rounded_to_the_slots(
    warehouse, settings, classifier
):
    dense = settings.model_copy(update={"rows_per_shard": 2, "batch_rows": 1})
    prepared = prepare(warehouse, dense)

    assert dense.auto_shards(ROWS) == 5
    # Two slots take six shards, three each, rather than five with one slot idle at the end.
    assert shards_for_slots(prepared, dense, 2) == 6
    assert shards_for_slots(prepared, dense, 5) == 5
    assert shards_for_slots(prepared, dense, 3) == 6
    # ...unless rounding would pass MLSYS_MAX_SHARDS.
    capped = dense.model_copy(update={"max_shards": 5})
    assert shards_for_slots(prepared, capped, 2) == 5


def test_commit_lands_every_shard_once(warehouse, store, settings, classifier):
    rows = 5_000  # the embedded warehouse splits a snapshot in row groups of 2048 or more
    warehouse.write(passengers(rows), INPUT, "WRITE_TRUNCATE")
    settings = settings.model_copy(update={"batch_rows": 1_000})
    prepared = prepare(warehouse, settings, store, id_columns=["PassengerId"])
    plan = plan_shards(prepared, warehouse, settings, "job-c", shards=2)
    assert len(plan.shards) == 2
    # The snapshot holds only what the job reads: its ids and the features.
    assert pq.read_schema(plan.shards[0]["path"]).names == ["PassengerId", *FEATURES]
    staged = [
        run_shard(prepared, shard, i, "job-c", warehouse, store, settings)
        for i, shard in enumerate(plan.shards)
    ]
    assert sum(staged) == rows

    assert commit_job(prepared, warehouse, "job-c", 2) == (rows, False)
    assert commit_job(prepared, warehouse, "job-c", 2) == (rows, True)
    frame = warehouse.read_table(OUTPUT).to_pandas()
    assert sorted(frame["PassengerId"]) == list(range(1, rows + 1))
    assert set(frame["JobId"]) == {"job-c"}


def run(warehouse, store, settings, job_id="job-1", **options):
    run_options = ("progress", "cancelled", "on_prepared", "workers")
    extra = {k: options.pop(k) for k in run_options if k in options}
    return predict_table(parse(settings, **options), warehouse, store, settings, job_id, **extra)


def test_a_run_reports_its_result_progress_and_prepared_job(warehouse, store, settings, classifier):
    done: list[int] = []
    prepared = []

    before = time.monotonic()
    result = run(warehouse, store, settings, progress=done.append, on_prepared=prepared.append)
    took = time.monotonic() - before

    assert done == [4, 4, 2]
    assert [p.rows_total for p in prepared] == [ROWS]
    assert result.job_id == "job-1"
    assert result.output_table == str(OUTPUT)
    assert result.rows_written == ROWS
    assert result.model == "clf/v1"
    assert result.shards == 1
    assert result.already_committed is False
    assert result.to_json()["rows_written"] == ROWS
    assert isinstance(result.seconds, float) and 0 < result.seconds <= round(took, 3) + 0.001
    assert result.monitoring is not None and result.monitoring["rows"] == ROWS
    stats = read_stats(warehouse, settings, ENV, "clf", 1)
    assert stats and {row["job_id"] for row in stats} == {"job-1"}
    assert warehouse.count_rows(OUTPUT) == ROWS
    assert not any(settings.staging_dir.rglob("*.parquet"))


def test_a_run_without_monitoring_records_no_drift(warehouse, store, settings, classifier):
    quiet = settings.model_copy(update={"monitoring": False})

    assert run(warehouse, store, quiet).monitoring is None


@pytest.mark.parametrize("when", ["mid-stream", "before the commit"])
def test_a_cancelled_run_writes_nothing(warehouse, store, settings, classifier, when):
    seen: list[int] = []

    def cancelled() -> bool:
        # mid-stream: once a batch is done; before the commit: once every row is.
        return sum(seen) >= (1 if when == "mid-stream" else ROWS)

    with pytest.raises(Cancelled) as caught:
        run(warehouse, store, settings, "job-x", progress=seen.append, cancelled=cancelled)

    assert str(caught.value) == "Job job-x was cancelled."
    assert sum(seen) == (BATCH_ROWS if when == "mid-stream" else ROWS)
    assert not warehouse.exists(OUTPUT)
    assert not any(settings.staging_dir.rglob("*.parquet"))


def test_a_rerun_of_a_committed_job_adds_nothing(warehouse, store, settings, classifier):
    first = run(warehouse, store, settings, "job-1")
    again = run(warehouse, store, settings, "job-1")

    assert (first.already_committed, again.already_committed) == (False, True)
    assert again.rows_written == ROWS
    assert warehouse.count_rows(OUTPUT) == ROWS


@pytest.mark.parametrize(
    ("options", "shards"),
    [
        ({}, 1),  # one process, automatic count: one shard
        ({"shards": 2}, 2),  # the spec's count, run in this process
        ({"workers": 2}, 2),  # one shard per pool process
    ],
    ids=["automatic", "spec", "pool"],
)
def test_a_run_splits_its_input_as_asked(warehouse, store, settings, classifier, options, shards):
    rows = 5_000  # the embedded warehouse splits a snapshot in row groups of 2048 or more
    warehouse.write(passengers(rows), INPUT, "WRITE_TRUNCATE")
    settings = settings.model_copy(update={"batch_rows": 1_000})
    done: list[int] = []

    result = run(warehouse, store, settings, progress=done.append, **options)

    assert (result.shards, result.rows_written, sum(done)) == (shards, rows, rows)
    frame = warehouse.read_table(OUTPUT).to_pandas()
    assert sorted(frame["PassengerId"]) == list(range(1, rows + 1))


def test_a_model_saved_without_metadata_is_read_where_models_may_load(warehouse, store, settings):
    # The seed's way: only model.pkl in the bucket; the API may not unpickle it, a run may.
    buffer = io.BytesIO()
    joblib.dump(ScriptedClassifier().fit(passengers()[FEATURES]), buffer)
    store.write(settings.bucket_for(ENV), "bare/v1/model.pkl", buffer.getvalue())
    sync_registry(warehouse, store, settings, ENV)

    with pytest.raises(MetadataPending, match="bare/v1 was registered without metadata.json"):
        prepare(warehouse, settings, model_name="bare")
    result = run(warehouse, store, settings, model_name="bare", id_columns=["PassengerId"])
    assert (result.model, result.rows_written) == ("bare/v1", ROWS)


def test_an_incremental_run_predicts_only_the_new_keys(warehouse, store, settings, classifier):
    options = {"mode": "incremental", "id_columns": ["PassengerId"]}
    assert run(warehouse, store, settings, "job-1", **options).rows_written == ROWS
    grown = passengers(ROWS + 3)
    warehouse.write(grown.tail(3), INPUT, "WRITE_APPEND")

    assert run(warehouse, store, settings, "job-2", **options).rows_written == 3
    frame = warehouse.read_table(OUTPUT).to_pandas()
    assert sorted(frame["PassengerId"]) == list(range(1, ROWS + 4))
    assert set(frame[frame["PassengerId"] > ROWS]["JobId"]) == {"job-2"}


def test_loading_sizes_the_cache_and_warns_of_library_drift(warehouse, store, settings, caplog):
    # A process warns once per model: a name of its own keeps this test's warning its own.
    name = f"drifted-{uuid.uuid4().hex[:8]}"
    bucket = settings.bucket_for(ENV)
    saved = save_model(ScriptedClassifier().fit(passengers()[FEATURES]), store, bucket, name)
    metadata = {**saved.metadata, "library_versions": {"scikit-learn": "0.0.1"}}
    store.write(bucket, f"{name}/v1/metadata.json", json.dumps(metadata).encode())
    sync_registry(warehouse, store, settings, ENV)
    small = settings.model_copy(update={"model_cache_mb": 3})
    prepared = prepare(warehouse, small, model_name=name)

    with caplog.at_level(logging.WARNING, logger="mlsys.artifacts"):
        assert load_model(prepared.model, store, small).predict(passengers()[FEATURES]) is not None
    assert MODEL_CACHE.max_bytes == 3 * 2**20
    assert f"{name}/v1 was saved with scikit-learn 0.0.1 (here " in caplog.text


def test_a_skops_model_loads_with_its_reviewed_types(warehouse, store, settings):
    model = ScriptedClassifier().fit(passengers()[FEATURES])
    save_model(model, store, settings.bucket_for(ENV), "reviewed", artifact_format="skops")
    sync_registry(warehouse, store, settings, ENV)
    trusting = settings.model_copy(
        update={"skops_trusted_types": ["tests.models.ScriptedClassifier"]}
    )

    assert run(warehouse, store, trusting, model_name="reviewed").rows_written == ROWS


def test_a_model_whose_metadata_guessed_the_task_wrong_writes_what_it_predicts(
    warehouse, store, settings
):
    # A hand-written metadata.json naming only the features: the task is guessed
    # (classification) and the target defaults; the loaded regressor corrects the schema.
    model = LinearRegression().fit(passengers()[["Pclass"]], np.arange(ROWS, dtype=float))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    bucket = settings.bucket_for(ENV)
    store.write(bucket, "guessed/v1/model.pkl", buffer.getvalue())
    store.write(bucket, "guessed/v1/metadata.json", json.dumps({"features": ["Pclass"]}).encode())
    sync_registry(warehouse, store, settings, ENV)
    options = {"model_name": "guessed", "id_columns": ["PassengerId"]}
    prepared = prepare(warehouse, settings, **options)
    assert (prepared.task, prepared.target) == ("classification", "prediction")

    run(warehouse, store, settings, **options)

    schema = warehouse.schema(OUTPUT)
    assert schema.names == ["PassengerId", "prediction", *METADATA]
    assert schema.field("prediction").type == pa.float64()
    frame = warehouse.read_table(OUTPUT).to_pandas().sort_values("PassengerId")
    expected = model.predict(passengers()[["Pclass"]])
    assert frame["prediction"].tolist() == pytest.approx(expected.tolist())
