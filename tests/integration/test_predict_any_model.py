"""Any estimator with the scikit-learn API predicts exactly what its own `predict` returns, with
labels of any type landing in a column of their type, over a real DuckDB file and model folder.
Also: a model saved the seed's way (bare pickle + the seed's metadata.json) predicts unflagged."""

from __future__ import annotations

import io
import json
import logging

import joblib
import lightgbm
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xgboost
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlsys import datasets
from mlsys.artifacts import save_model
from mlsys.ids import TableId
from mlsys.predict import PredictSpec, predict_table
from mlsys.registry import sync_registry

pytestmark = pytest.mark.integration

ENV = "dev"
ROWS = 600
INPUT = TableId("mlsys-local", "titanic", "passengers")
OUTPUT = TableId("mlsys-local", "titanic", "predictions")
FEATURES = ["Pclass", "SibSp", "Parch", "Fare"]

LABELS = {
    "int": lambda y: y.astype(int),
    "bool": lambda y: y.astype(bool),
    "str": lambda y: y.map({0: "died", 1: "survived"}),
    "numpy-str": lambda y: np.where(y == 1, np.str_("survived"), np.str_("died")),
    "categorical": lambda y: pd.Categorical(y.map({0: "died", 1: "survived"})),
}
#: The column type each kind of label lands in.
LABEL_TYPES = {
    "int": pa.int64(),
    "bool": pa.bool_(),
    "str": pa.string(),
    "numpy-str": pa.string(),
    "categorical": pa.string(),
}


def lgbm_classifier():
    return lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, n_jobs=1)


def xgb_classifier():
    return xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1)


CLASSIFIERS = {
    "sklearn-forest": lambda: RandomForestClassifier(n_estimators=15, random_state=0, n_jobs=1),
    "sklearn-pipeline": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
    "sklearn-threshold": lambda: FixedThresholdClassifier(LogisticRegression(), threshold=0.3),
    "lightgbm": lgbm_classifier,
    "lightgbm-pipeline": lambda: make_pipeline(StandardScaler(), lgbm_classifier()),
    "xgboost": xgb_classifier,
    "xgboost-pipeline": lambda: make_pipeline(StandardScaler(), xgb_classifier()),
}
REGRESSORS = {
    "sklearn": LinearRegression,
    "lightgbm": lambda: lightgbm.LGBMRegressor(n_estimators=20, verbose=-1, n_jobs=1),
    "lightgbm-pipeline": lambda: make_pipeline(
        StandardScaler(), lightgbm.LGBMRegressor(n_estimators=20, verbose=-1, n_jobs=1)
    ),
    "xgboost": lambda: xgboost.XGBRegressor(n_estimators=20, n_jobs=1),
    "xgboost-pipeline": lambda: make_pipeline(
        StandardScaler(), xgboost.XGBRegressor(n_estimators=20, n_jobs=1)
    ),
}


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return datasets.titanic(800, seed=1)


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"batch_rows": 250})


@pytest.fixture
def warehouse(warehouse):
    datasets.write_titanic(warehouse, INPUT, ROWS, seed=2)
    return warehouse


@pytest.fixture
def passengers(warehouse) -> pd.DataFrame:
    frame = warehouse.read_table(INPUT).to_pandas()
    return frame.sort_values("PassengerId").reset_index(drop=True)


def run(warehouse, store, settings, name: str, **options):
    spec = PredictSpec.parse(
        env=ENV,
        input_table=str(INPUT),
        output_table=str(OUTPUT),
        model_name=name,
        settings=settings,
        **options,
    )
    return predict_table(spec, warehouse, store, settings, "job-1")


def output(warehouse) -> pd.DataFrame:
    return warehouse.read_table(OUTPUT).to_pandas().sort_values("PassengerId")


def save_bare(store, settings, name: str, model, metadata: dict | None) -> None:
    """As the seed's notebook saved models: gcs_put_pickle + a metadata.json of its own."""
    bucket = settings.bucket_for(ENV)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    store.write(bucket, f"{name}/v1/model.pkl", buffer.getvalue())
    if metadata is not None:
        store.write(bucket, f"{name}/v1/metadata.json", json.dumps(metadata).encode())


def seed_metadata(model_type: str, **extra) -> dict:
    """The keys the seed's notebook wrote: no task, no classes, no id columns."""
    return {
        "model_type": model_type,
        "features": FEATURES,
        "target": "Survived",
        "test_accuracy": 0.8,
        "test_roc_auc": 0.85,
        "hyperparameters": {"n_estimators": 15},
        "gcs_path": "gs://mlsys-models-dev/m/v1/model.pkl",
        **extra,
    }


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_classifiers_predict_what_the_model_predicts_in_the_labels_type(
    warehouse, store, settings, passengers, train, kind, label
):
    if kind.startswith("xgboost") and label not in ("int", "bool"):
        pytest.skip("XGBoost itself refuses labels other than 0..n-1")
    y = LABELS[label](train["Survived"])
    model = CLASSIFIERS[kind]().fit(train[FEATURES], y)
    # The seed's way: metadata without task or classes, so types come from the model.
    save_bare(store, settings, "m", model, seed_metadata(type(model).__name__))
    sync_registry(warehouse, store, settings, ENV)

    result = run(warehouse, store, settings, "m", id_columns=["PassengerId"])

    assert result.rows_written == ROWS
    schema = warehouse.schema(OUTPUT)
    out = output(warehouse)
    expected = np.asarray(model.predict(passengers[FEATURES]))
    # XGBoost encodes bool labels as 0/1 and predicts those: the column follows the model.
    xgboost_bool = kind.startswith("xgboost") and label == "bool"
    assert schema.field("Survived").type == (pa.int64() if xgboost_bool else LABEL_TYPES[label])
    assert out["Survived"].tolist() == [
        v.item() if isinstance(v, np.generic) else v for v in expected
    ]
    proba = model.predict_proba(passengers[FEATURES])
    position = {
        c.item() if isinstance(c, np.generic) else c: i for i, c in enumerate(model.classes_)
    }
    chosen = [proba[row, position[v]] for row, v in enumerate(out["Survived"].tolist())]
    np.testing.assert_allclose(out["PredictionProbability"].to_numpy(), chosen, rtol=1e-6)


@pytest.mark.parametrize("kind", REGRESSORS)
def test_regressors_predict_floats_exactly(warehouse, store, settings, passengers, train, kind):
    model = REGRESSORS[kind]().fit(train[FEATURES], train["Age"].fillna(30.0))
    # No hint in the metadata that it is a regressor: the worker asks the model.
    save_bare(store, settings, "r", model, {"features": FEATURES, "target": "PredictedAge"})
    sync_registry(warehouse, store, settings, ENV)

    run(warehouse, store, settings, "r", id_columns=["PassengerId"])

    schema = warehouse.schema(OUTPUT)
    assert schema.field("PredictedAge").type == pa.float64()
    assert "PredictionProbability" not in schema.names
    expected = np.asarray(model.predict(passengers[FEATURES]), dtype=np.float64)
    np.testing.assert_array_equal(output(warehouse)["PredictedAge"].to_numpy(), expected)


def test_a_seed_model_predicts_with_no_flags(warehouse, store, settings, passengers, train):
    """The seed's model.pkl + metadata.json, and `predict` with only the tables and the name."""
    model = RandomForestClassifier(n_estimators=15, random_state=0, n_jobs=1)
    model.fit(train[FEATURES], train["Survived"])
    save_bare(store, settings, "titanic-survival", model, seed_metadata("RandomForestClassifier"))
    sync_registry(warehouse, store, settings, ENV)

    result = run(warehouse, store, settings, "titanic-survival", model_version="v1")

    assert result.rows_written == ROWS
    schema = warehouse.schema(OUTPUT)
    # The input's other columns, then the predictions (its own Survived gives way).
    assert schema.names[:5] == ["PassengerId", "Name", "Sex", "Age", "Ticket"]
    assert schema.field("Survived").type == pa.int64()
    out = output(warehouse)
    assert out["Name"].tolist() == passengers["Name"].tolist()
    np.testing.assert_array_equal(out["Survived"].to_numpy(), model.predict(passengers[FEATURES]))


def test_library_versions_are_noted_at_save_and_a_difference_is_warned_at_load(
    warehouse, store, settings, train, caplog
):
    model = make_pipeline(StandardScaler(), lgbm_classifier()).fit(
        train[FEATURES], train["Survived"]
    )
    saved = save_model(model, store, settings.bucket_for(ENV), "lgbm", target="Survived")
    versions = saved.metadata["library_versions"]
    assert versions["lightgbm"] == lightgbm.__version__
    assert {"python", "scikit-learn", "numpy", "pandas"} <= set(versions)

    older = seed_metadata("LGBMClassifier", library_versions={**versions, "lightgbm": "3.0.0"})
    save_bare(store, settings, "old-lgbm", model, older)
    sync_registry(warehouse, store, settings, ENV)
    with caplog.at_level(logging.WARNING, logger="mlsys.artifacts"):
        run(warehouse, store, settings, "lgbm", id_columns=["PassengerId"])
        assert "saved with" not in caplog.text
        run(
            warehouse,
            store,
            settings,
            "old-lgbm",
            id_columns=["PassengerId"],
            write_disposition="WRITE_TRUNCATE",
        )
    assert f"old-lgbm/v1 was saved with lightgbm 3.0.0 (here {lightgbm.__version__})" in (
        caplog.text
    )
