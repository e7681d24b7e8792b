"""The main job on the embedded default, end to end: data, model, registry, predictions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mlsys import datasets
from mlsys.errors import BlobNotFound
from mlsys.ids import TableId
from mlsys.models.artifacts import artifact_path, save_model
from mlsys.predict import PredictResult, PredictSpec, predict_table
from mlsys.registry import sync_registry
from mlsys.settings import Settings
from mlsys.store.base import ModelStore
from mlsys.warehouse.base import Warehouse

MODEL_NAME = "titanic-survival"
NUMERIC = ["Pclass", "Age", "SibSp", "Parch", "Fare"]
CATEGORICAL = ["Sex", "Embarked"]


def titanic_pipeline(n_estimators: int = 100, n_jobs: int | None = None) -> Pipeline:
    """The demo's model: impute, one-hot encode, random forest."""
    features = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), NUMERIC),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                CATEGORICAL,
            ),
        ]
    )
    forest = RandomForestClassifier(
        n_estimators=n_estimators, max_depth=8, min_samples_leaf=5, random_state=0, n_jobs=n_jobs
    )
    return Pipeline([("features", features), ("model", forest)])


def demo_tables(settings: Settings) -> tuple[TableId, TableId]:
    project = settings.gcp_project_id
    return TableId(project, "titanic", "passengers"), TableId(project, "titanic", "predictions")


@dataclass
class DemoReport:
    rows: int
    input_table: str
    output_table: str
    model: str
    model_saved: bool
    metrics: dict
    result: PredictResult
    seconds_total: float


def run_demo(
    warehouse: Warehouse,
    store: ModelStore,
    settings: Settings,
    rows: int,
    env: str = "dev",
    say=print,
    progress_factory=None,
) -> DemoReport:
    """Make data, train, save `titanic-survival/v1`, sync the registry, predict."""
    started = time.monotonic()
    settings.check_env(env)
    passengers, predictions = demo_tables(settings)
    say(f"1/5 Writing {rows:,} synthetic passengers to {passengers} ...")
    datasets.write_titanic(warehouse, passengers, rows)

    bucket = settings.bucket_for(env)
    try:
        store.stat(bucket, artifact_path(MODEL_NAME, 1, "model.pkl"))
        saved, metrics = False, {}
        say(f"2/5 {MODEL_NAME}/v1 is already in {store.uri(bucket)}; keeping it.")
    except BlobNotFound:
        say("2/5 Training a random forest pipeline on 20,000 passengers ...")
        saved, metrics = True, _train_and_save(store, bucket)
        say(f"   accuracy {metrics['accuracy']:.3f}, ROC AUC {metrics['roc_auc']:.3f}")

    say(f"3/5 Model in {store.uri(bucket)}/{MODEL_NAME}/v1/; syncing the {env} registry ...")
    sync = sync_registry(warehouse, store, settings, env)
    say(f"   {sync.scanned} version(s) scanned, {sync.inserted} new, {sync.updated} updated")

    say(f"4/5 Predicting {rows:,} rows into {predictions} ...")
    bar = progress_factory(rows) if progress_factory else None
    try:
        result = _predict(warehouse, store, settings, env, bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    return DemoReport(
        rows=rows,
        input_table=str(passengers),
        output_table=str(predictions),
        model=f"{MODEL_NAME}/v1",
        model_saved=saved,
        metrics=metrics,
        result=result,
        seconds_total=round(time.monotonic() - started, 2),
    )


def _train_and_save(store: ModelStore, bucket: str) -> dict:
    """Train the demo's model on synthetic passengers and save it as v1. Returns its metrics."""
    train = datasets.titanic(20_000, seed=1)
    x_train, x_test, y_train, y_test = train_test_split(
        train[NUMERIC + CATEGORICAL], train[datasets.TARGET], test_size=0.25, random_state=0
    )
    model = titanic_pipeline().fit(x_train, y_train)
    proba = model.predict_proba(x_test)[:, 1]
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, proba > 0.5)), 4),
        "roc_auc": round(float(roc_auc_score(y_test, proba)), 4),
    }
    save_model(
        model,
        store,
        bucket,
        MODEL_NAME,
        1,
        target=datasets.TARGET,
        id_columns=[datasets.ID_COLUMN],
        metrics=metrics,
        description="Demo: survival of synthetic Titanic passengers.",
        # The training profile every predict job is compared with (monitoring).
        training_data=x_train,
        training_target=y_train,
    )
    return metrics


def _predict(
    warehouse: Warehouse,
    store: ModelStore,
    settings: Settings,
    env: str,
    progress: Callable[[int], None] | None,
) -> PredictResult:
    """Predict every demo passenger with v1, replacing the previous predictions."""
    passengers, predictions = demo_tables(settings)
    spec = PredictSpec.parse(
        env=env,
        input_table=str(passengers),
        output_table=str(predictions),
        model_name=MODEL_NAME,
        model_version="v1",
        write_disposition="WRITE_TRUNCATE",
        settings=settings,
    )
    job_id = f"demo-{int(time.time())}"
    return predict_table(spec, warehouse, store, settings, job_id=job_id, progress=progress)
