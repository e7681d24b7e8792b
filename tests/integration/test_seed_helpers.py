"""The seed's notebook helpers (bq_*, gcs_*), configured only through the environment."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlsys import datasets
from mlsys.bq import bq_get, bq_put
from mlsys.errors import (
    BlobNotFound,
    InvalidIdentifier,
    InvalidRequest,
    SchemaMismatch,
    TableNotEmpty,
    TableNotFound,
)
from mlsys.gcs import gcs_get, gcs_get_pickle, gcs_list_blobs, gcs_put, gcs_put_pickle
from mlsys.registry import read_registry, sync_registry
from mlsys.settings import Settings, get_settings
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse

pytestmark = pytest.mark.integration

ENV_NAMES = [
    str(choice)
    for field in Settings.model_fields.values()
    if field.validation_alias is not None
    for choice in field.validation_alias.choices
]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """MLSYS_HOME in tmp_path, nothing else from the machine, and fresh cached settings."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    home = tmp_path / "home"
    monkeypatch.setenv("MLSYS_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def frame() -> pd.DataFrame:
    return datasets.titanic(200)


@pytest.fixture(scope="module")
def model():
    train = datasets.titanic(500, seed=1)
    return LogisticRegression(max_iter=1000).fit(train[["Pclass", "Fare"]], train["Survived"])


# --- bq_get / bq_put -------------------------------------------------------------------------
def test_bq_put_then_bq_get_with_bigquery_sql(home, frame):
    assert bq_put(frame, "mlsys-local.titanic.passengers") == 200
    assert (home / "warehouse.duckdb").exists()
    got = bq_get(
        "SELECT Sex, COUNT(*) AS n, COUNTIF(Survived = 1) AS survived "
        "FROM `mlsys-local.titanic.passengers` GROUP BY Sex ORDER BY Sex"
    )
    expected = frame.groupby("Sex").agg(n=("Survived", "size"), survived=("Survived", "sum"))
    assert got["Sex"].tolist() == ["female", "male"]
    assert got["n"].tolist() == expected["n"].tolist()
    assert got["survived"].tolist() == expected["survived"].tolist()
    rows = bq_get("SELECT * FROM `mlsys-local.titanic.passengers` ORDER BY PassengerId")
    assert rows["PassengerId"].tolist() == frame["PassengerId"].tolist()
    assert rows["Age"].isna().sum() == frame["Age"].isna().sum()


def test_two_part_names_use_gcp_project_id(home, frame, monkeypatch):
    monkeypatch.setenv("GCP_PROJECT_ID", "acme-analytics")
    get_settings.cache_clear()
    bq_put(frame, "titanic.passengers")
    assert bq_get("SELECT COUNT(*) AS n FROM `acme-analytics.titanic.passengers`")["n"][0] == 200
    assert bq_get("SELECT COUNT(*) AS n FROM titanic.passengers")["n"][0] == 200
    with pytest.raises(TableNotFound):
        bq_get("SELECT COUNT(*) FROM `mlsys-local.titanic.passengers`")


def test_write_dispositions(home, frame):
    table = "mlsys-local.titanic.passengers"
    count = "SELECT COUNT(*) AS n FROM `mlsys-local.titanic.passengers`"
    bq_put(frame, table, "WRITE_EMPTY")  # a new table is empty
    bq_put(frame.iloc[:50], table)  # WRITE_APPEND is the default
    assert bq_get(count)["n"][0] == 250
    bq_put(frame.iloc[:50], table, write_disposition="WRITE_APPEND")
    assert bq_get(count)["n"][0] == 300
    with pytest.raises(TableNotEmpty, match="WRITE_EMPTY"):
        bq_put(frame, table, "WRITE_EMPTY")
    assert bq_get(count)["n"][0] == 300
    bq_put(frame.iloc[:10], table, "WRITE_TRUNCATE")
    assert bq_get(count)["n"][0] == 10
    bq_put(frame.iloc[:0], table, "WRITE_TRUNCATE")
    bq_put(frame.iloc[:5], table, "WRITE_EMPTY")  # empty again, so allowed
    assert bq_get(count)["n"][0] == 5
    with pytest.raises(InvalidRequest, match="WRITE_APPEND"):
        bq_put(frame, table, "APPEND")
    with pytest.raises(SchemaMismatch, match="Extra"):
        bq_put(frame.assign(Extra=1), table, "WRITE_APPEND")
    assert bq_get(count)["n"][0] == 5


def test_bad_table_ids_and_sql(home, frame):
    with pytest.raises(InvalidIdentifier):
        bq_put(frame, "mlsys-local.titanic.passengers; DROP TABLE x")
    with pytest.raises(InvalidIdentifier):
        bq_put(frame, "passengers")
    with pytest.raises(TableNotFound):
        bq_get("SELECT * FROM `mlsys-local.titanic.nope`")
    with pytest.raises(InvalidRequest):
        bq_get("SELEC 1")


def test_mlsys_warehouse_points_the_helpers_elsewhere(home, frame, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere" / "wh.duckdb"
    monkeypatch.setenv("MLSYS_WAREHOUSE", f"duckdb:///{other}")
    get_settings.cache_clear()
    bq_put(frame, "mlsys-local.titanic.passengers")
    assert other.exists()
    assert not (home / "warehouse.duckdb").exists()


# --- gcs_* -----------------------------------------------------------------------------------
def test_gcs_put_get_and_list_in_the_seed_bucket(home):
    bucket = "mlsys-models-dev"
    gcs_put(b"\x00\x01binary", bucket, "titanic-survival/v1/notes.bin")
    info = gcs_put('{"a": 1}', bucket, "titanic-survival/v1/metadata.json")
    assert info.name == "titanic-survival/v1/metadata.json" and info.size == 8
    gcs_put("other", bucket, "other-model/v1/readme.txt")
    assert gcs_get(bucket, "titanic-survival/v1/notes.bin") == b"\x00\x01binary"
    assert gcs_get(bucket, "titanic-survival/v1/metadata.json") == b'{"a": 1}'
    # Stored where the embedded store keeps that bucket.
    assert (home / "models" / bucket / "titanic-survival" / "v1" / "metadata.json").exists()

    everything = gcs_list_blobs(bucket)
    assert [b.name for b in everything] == [
        "other-model/v1/readme.txt",
        "titanic-survival/v1/metadata.json",
        "titanic-survival/v1/notes.bin",
    ]
    listed = gcs_list_blobs(bucket, prefix="titanic-survival/")
    assert [(b.name, b.size) for b in listed] == [
        ("titanic-survival/v1/metadata.json", 8),
        ("titanic-survival/v1/notes.bin", 8),
    ]
    assert all(b.generation and b.updated for b in listed)
    assert gcs_list_blobs("mlsys-models-prod") == []


def test_gcs_put_replaces_and_get_refuses_what_is_not_there(home):
    bucket = "mlsys-models-dev"
    gcs_put("one", bucket, "m/v1/x.txt")
    gcs_put("two", bucket, "m/v1/x.txt")
    assert gcs_get(bucket, "m/v1/x.txt") == b"two"
    with pytest.raises(BlobNotFound):
        gcs_get(bucket, "m/v1/absent.txt")
    with pytest.raises(InvalidIdentifier):
        gcs_put("x", bucket, "../escape.txt")
    with pytest.raises(InvalidIdentifier):
        gcs_get(bucket, "/etc/passwd")
    with pytest.raises(InvalidIdentifier):
        gcs_put("x", "../outside", "m/v1/x.txt")
    assert not (home.parent / "escape.txt").exists()


def test_gcs_pickle_round_trip(home, model):
    probe = datasets.titanic(50, seed=9)[["Pclass", "Fare"]]
    gcs_put_pickle(model, "mlsys-models-dev", "titanic-survival/v1/model.pkl")
    loaded = gcs_get_pickle("mlsys-models-dev", "titanic-survival/v1/model.pkl")
    assert type(loaded) is LogisticRegression
    assert (loaded.predict_proba(probe) == model.predict_proba(probe)).all()
    gcs_put_pickle({"threshold": 0.4}, "mlsys-models-dev", "config/thresholds.pkl")
    assert gcs_get_pickle("mlsys-models-dev", "config/thresholds.pkl") == {"threshold": 0.4}


def test_bucket_override_is_what_the_registry_scans(home, model, monkeypatch):
    """The seed workflow: pickle to the dev bucket named by GCS_BUCKET_MODELS_DEV, then sync."""
    monkeypatch.setenv("GCS_BUCKET_MODELS_DEV", "acme-models-dev")
    get_settings.cache_clear()
    settings = get_settings()
    bucket = settings.bucket_for("dev")
    assert bucket == "acme-models-dev"
    gcs_put_pickle(model, bucket, "titanic-survival/v1/model.pkl")
    gcs_put_pickle(model, "mlsys-models-dev", "ignored-model/v1/model.pkl")  # not dev's bucket
    assert [b.name for b in gcs_list_blobs(bucket)] == ["titanic-survival/v1/model.pkl"]
    assert (home / "models" / "acme-models-dev" / "titanic-survival" / "v1" / "model.pkl").exists()

    warehouse, store = open_warehouse(settings=settings), open_store(settings=settings)
    result = sync_registry(warehouse, store, settings, "dev")
    assert (result.scanned, result.inserted) == (1, 1)
    (entry,) = read_registry(warehouse, settings, "dev")
    assert (entry.model_name, entry.gcs_bucket) == ("titanic-survival", "acme-models-dev")
    # And the notebook reads the registry with bq_get, as the seed did.
    rows = bq_get("SELECT model_name, status FROM `mlsys-local.mlsys_dev.model_registry`")
    # A bare pickle is never unpickled by a sync: its features are read at its first predict.
    assert rows.to_dict("records") == [{"model_name": "titanic-survival", "status": "pending"}]


def test_mlsys_model_store_points_the_helpers_elsewhere(home, tmp_path, monkeypatch):
    other = tmp_path / "shared-models"
    monkeypatch.setenv("MLSYS_MODEL_STORE", other.as_uri())
    get_settings.cache_clear()
    gcs_put("x", "mlsys-models-dev", "m/v1/x.txt")
    assert (other / "mlsys-models-dev" / "m" / "v1" / "x.txt").read_text() == "x"
    assert not (home / "models").exists()
