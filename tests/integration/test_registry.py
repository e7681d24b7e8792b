"""The registry over a real DuckDB file and a real model folder: sync is a MERGE, not an append."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlsys import datasets
from mlsys.artifacts import load_verified, save_model, sha256_hex
from mlsys.demo import titanic_pipeline
from mlsys.errors import ArtifactIntegrityError, InvalidIdentifier, ModelNotFound
from mlsys.ids import ModelRef
from mlsys.registry import (
    ACTIVE,
    INVALID,
    MISSING,
    read_registry,
    registry_table,
    resolve,
    set_alias,
    sync_registry,
)

pytestmark = pytest.mark.integration

ENV = "dev"
NAME = "titanic-survival"
NUMERIC = ["Pclass", "SibSp", "Parch", "Fare"]


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return datasets.titanic(1_000, seed=1)


@pytest.fixture(scope="module")
def models(train):
    """Three different small models over the same features."""
    return [
        LogisticRegression(C=c, max_iter=1000).fit(train[NUMERIC], train["Survived"])
        for c in (0.01, 1.0, 100.0)
    ]


@pytest.fixture
def bucket(settings) -> str:
    return settings.bucket_for(ENV)


def save(store, bucket, model, version=None, name=NAME, **kwargs):
    return save_model(
        model, store, bucket, name, version, target="Survived", id_columns=["PassengerId"], **kwargs
    )


def registry_rows(warehouse, settings) -> list[dict]:
    table = warehouse.read_table(registry_table(settings, ENV))
    return sorted(table.to_pylist(), key=lambda r: (r["model_name"], r["model_version"]))


def entries(warehouse, settings) -> dict[int, object]:
    return {e.model_version: e for e in read_registry(warehouse, settings, ENV)}


def load(store, entry, settings=None):
    return load_verified(
        store,
        entry.gcs_bucket,
        entry.blob_path,
        sha256=entry.sha256,
        generation=entry.generation,
        artifact_format=entry.artifact_format,
        trusted_types=tuple(settings.skops_trusted_types) if settings else (),
    )


def test_sync_inserts_one_row_per_version(warehouse, store, settings, bucket, models):
    saved = [save(store, bucket, m) for m in models[:2]]
    assert [s.version for s in saved] == [1, 2]
    result = sync_registry(warehouse, store, settings, ENV)
    assert (result.scanned, result.inserted, result.updated, result.invalid, result.missing) == (
        2,
        2,
        0,
        0,
        0,
    )
    assert result.table == "mlsys-local.mlsys_dev.model_registry"

    rows = registry_rows(warehouse, settings)
    assert [(r["model_name"], r["model_version"]) for r in rows] == [(NAME, 1), (NAME, 2)]
    seed_columns = [
        "model_name",
        "model_version",
        "environment",
        "gcs_bucket",
        "file_size_bytes",
        "upload_timestamp",
        "uploader",
        "registered_at",
        "metadata",
    ]
    for row, s in zip(rows, saved, strict=True):
        assert set(seed_columns) <= set(row)
        assert row["environment"] == ENV
        assert row["gcs_bucket"] == "mlsys-models-dev"
        assert row["blob_path"] == f"{NAME}/v{s.version}/model.pkl"
        assert row["status"] == ACTIVE
        assert row["sha256"] == s.sha256
        assert row["file_size_bytes"] == store.stat(bucket, row["blob_path"]).size
        assert json.loads(row["metadata"])["features"] == NUMERIC
        assert row["registered_at"] is not None and row["updated_at"] is not None
    assert resolve(warehouse, settings, ENV, ModelRef.parse(NAME)).model_version == 2


def test_resync_without_change_writes_nothing(warehouse, store, settings, bucket, models):
    for model in models:
        save(store, bucket, model)
    sync_registry(warehouse, store, settings, ENV)
    before = registry_rows(warehouse, settings)
    for _ in range(2):
        again = sync_registry(warehouse, store, settings, ENV)
        assert (again.scanned, again.inserted, again.updated) == (3, 0, 0)
        assert registry_rows(warehouse, settings) == before  # updated_at included


def test_a_resync_reads_only_the_objects_with_a_new_generation(
    warehouse, store, settings, bucket, models, monkeypatch
):
    for model in models[:2]:
        save(store, bucket, model)
    sync_registry(warehouse, store, settings, ENV)
    reads: list[str] = []
    read = store.read
    monkeypatch.setattr(
        store, "read", lambda b, path, **kw: reads.append(path) or read(b, path, **kw)
    )

    again = sync_registry(warehouse, store, settings, ENV)
    assert (again.scanned, again.updated, reads) == (2, 0, [])  # not even metadata.json

    metadata = json.loads(read(bucket, f"{NAME}/v2/metadata.json"))
    store.write(
        bucket, f"{NAME}/v2/metadata.json", json.dumps({**metadata, "uploader": "ana"}).encode()
    )
    changed = sync_registry(warehouse, store, settings, ENV)
    assert (changed.updated, reads) == (1, [f"{NAME}/v2/metadata.json"])
    assert entries(warehouse, settings)[2].uploader == "ana"


def test_new_version_is_added_and_others_are_untouched(warehouse, store, settings, bucket, models):
    save(store, bucket, models[0])
    sync_registry(warehouse, store, settings, ENV)
    (v1_before,) = registry_rows(warehouse, settings)
    save(store, bucket, models[1])
    result = sync_registry(warehouse, store, settings, ENV)
    assert (result.inserted, result.updated) == (1, 0)
    v1_after, v2 = registry_rows(warehouse, settings)
    assert v1_after == v1_before
    assert v2["model_version"] == 2 and v2["status"] == ACTIVE


def test_replaced_artifact_is_rehashed_and_loads_only_after_resync(
    warehouse, store, settings, bucket, models, train
):
    save(store, bucket, models[0])
    sync_registry(warehouse, store, settings, ENV)
    old = entries(warehouse, settings)[1]

    # Someone uploads new bytes to the same path (and a matching metadata.json).
    replacement = save(store, bucket, models[2], name="scratch")
    new_bytes = store.read(bucket, "scratch/v1/model.pkl")
    store.write(bucket, f"{NAME}/v1/model.pkl", new_bytes)
    store.write(bucket, f"{NAME}/v1/metadata.json", store.read(bucket, "scratch/v1/metadata.json"))
    assert sha256_hex(new_bytes) == replacement.sha256 != old.sha256

    stale = resolve(warehouse, settings, ENV, ModelRef.parse(NAME, "v1"))
    with pytest.raises(ArtifactIntegrityError, match="replaced after it was registered"):
        load(store, stale)

    result = sync_registry(warehouse, store, settings, ENV)
    assert result.updated >= 1
    fresh = entries(warehouse, settings)[1]
    assert fresh.sha256 == replacement.sha256
    assert fresh.generation != old.generation
    assert fresh.status == ACTIVE
    assert fresh.registered_at == old.registered_at  # still the same registered version
    model = load(store, fresh)
    np.testing.assert_array_equal(
        model.predict_proba(train[NUMERIC]), models[2].predict_proba(train[NUMERIC])
    )


def test_bytes_that_disagree_with_metadata_are_invalid(warehouse, store, settings, bucket, models):
    save(store, bucket, models[0])
    save(store, bucket, models[1])
    # v2's model.pkl is swapped for other bytes; its metadata.json still has the old hash.
    store.write(bucket, f"{NAME}/v2/model.pkl", store.read(bucket, f"{NAME}/v1/model.pkl"))
    result = sync_registry(warehouse, store, settings, ENV)
    assert result.invalid == 1
    v1, v2 = entries(warehouse, settings)[1], entries(warehouse, settings)[2]
    assert (v1.status, v2.status) == (ACTIVE, INVALID)
    assert any("SHA-256" in p for p in v2.metadata["problems"])
    with pytest.raises(ArtifactIntegrityError, match="invalid"):
        resolve(warehouse, settings, ENV, ModelRef.parse(NAME, "v2"))
    assert resolve(warehouse, settings, ENV, ModelRef.parse(NAME, "latest")).model_version == 1


def test_metadata_that_is_not_json_is_invalid(warehouse, store, settings, bucket, models):
    save(store, bucket, models[0])
    store.write(bucket, f"{NAME}/v1/metadata.json", b"{not json")
    assert sync_registry(warehouse, store, settings, ENV).invalid == 1
    assert entries(warehouse, settings)[1].status == INVALID
    with pytest.raises(ArtifactIntegrityError, match="not valid JSON"):
        resolve(warehouse, settings, ENV, ModelRef.parse(NAME, "v1"))
    with pytest.raises(ModelNotFound, match="no version latest"):
        resolve(warehouse, settings, ENV, ModelRef.parse(NAME, "latest"))


def test_deleted_version_is_missing_and_skipped_by_latest(
    warehouse, store, settings, bucket, models
):
    for model in models:
        save(store, bucket, model)
    sync_registry(warehouse, store, settings, ENV)
    set_alias(warehouse, settings, ENV, NAME, "champion", "v3")
    store.delete(bucket, f"{NAME}/v3/model.pkl")
    store.delete(bucket, f"{NAME}/v3/metadata.json")

    result = sync_registry(warehouse, store, settings, ENV)
    assert (result.missing, result.updated, result.inserted) == (1, 1, 0)
    v3 = entries(warehouse, settings)[3]
    assert v3.status == MISSING
    assert v3.aliases == ["champion"]  # the alias stays, pointing at a missing version
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        resolve(warehouse, settings, ENV, ModelRef.parse(NAME, "v3"))
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        resolve(warehouse, settings, ENV, ModelRef.parse(NAME, "@champion"))
    assert resolve(warehouse, settings, ENV, ModelRef.parse(NAME)).model_version == 2
    # Marked once: the next sync changes nothing.
    before = registry_rows(warehouse, settings)
    again = sync_registry(warehouse, store, settings, ENV)
    assert (again.missing, again.updated, again.inserted) == (0, 0, 0)
    assert registry_rows(warehouse, settings) == before


def test_model_file_deleted_but_metadata_left_is_missing(
    warehouse, store, settings, bucket, models
):
    save(store, bucket, models[0])
    sync_registry(warehouse, store, settings, ENV)
    store.delete(bucket, f"{NAME}/v1/model.pkl")  # metadata.json stays behind
    result = sync_registry(warehouse, store, settings, ENV)
    assert result.missing == 1
    assert entries(warehouse, settings)[1].status == MISSING
    with pytest.raises(ModelNotFound, match="no version latest"):
        resolve(warehouse, settings, ENV, ModelRef.parse(NAME))


def test_latest_with_nothing_active(warehouse, store, settings, bucket, models):
    save(store, bucket, models[0])
    sync_registry(warehouse, store, settings, ENV)
    store.delete(bucket, f"{NAME}/v1/model.pkl")
    store.delete(bucket, f"{NAME}/v1/metadata.json")
    sync_registry(warehouse, store, settings, ENV)
    with pytest.raises(ModelNotFound, match="no version latest"):
        resolve(warehouse, settings, ENV, ModelRef.parse(NAME))


def test_aliases_move_and_survive_syncs(warehouse, store, settings, bucket, models):
    save(store, bucket, models[0])
    save(store, bucket, models[1])
    sync_registry(warehouse, store, settings, ENV)

    assert set_alias(warehouse, settings, ENV, NAME, "champion", "v1").model_version == 1
    assert set_alias(warehouse, settings, ENV, NAME, "@challenger", "2").model_version == 2
    assert resolve(warehouse, settings, ENV, ModelRef.parse(NAME, "@champion")).model_version == 1

    moved = set_alias(warehouse, settings, ENV, NAME, "champion", "v2")
    assert moved.model_version == 2
    by_version = entries(warehouse, settings)
    assert by_version[1].aliases == []
    assert by_version[2].aliases == ["challenger", "champion"]
    assert resolve(warehouse, settings, ENV, ModelRef.parse(NAME, "champion")).model_version == 2

    # A sync that adds a version, and one that re-hashes a replaced one, keep every alias.
    save(store, bucket, models[2])
    sync_registry(warehouse, store, settings, ENV)
    store.write(bucket, f"{NAME}/v2/model.pkl", store.read(bucket, f"{NAME}/v3/model.pkl"))
    store.delete(bucket, f"{NAME}/v2/metadata.json")
    sync_registry(warehouse, store, settings, ENV)
    by_version = entries(warehouse, settings)
    assert by_version[2].aliases == ["challenger", "champion"]
    assert by_version[3].aliases == []
    assert resolve(warehouse, settings, ENV, ModelRef.parse(NAME, "champion")).model_version == 2


def test_set_alias_refuses_bad_names_and_unknown_versions(
    warehouse, store, settings, bucket, models
):
    save(store, bucket, models[0])
    sync_registry(warehouse, store, settings, ENV)
    for bad in ("latest", "v2", "Champion", "a;b"):
        with pytest.raises(InvalidIdentifier):
            set_alias(warehouse, settings, ENV, NAME, bad, "v1")
    with pytest.raises(ModelNotFound, match="no version v7"):
        set_alias(warehouse, settings, ENV, NAME, "champion", "v7")
    with pytest.raises(ModelNotFound):
        set_alias(warehouse, settings, ENV, "other-model", "champion", "v1")
    assert entries(warehouse, settings)[1].aliases == []


def test_environments_have_separate_registries(warehouse, store, settings, models):
    save(store, settings.bucket_for("dev"), models[0])
    save(store, settings.bucket_for("prod"), models[1])
    save(store, settings.bucket_for("prod"), models[2])
    assert sync_registry(warehouse, store, settings, "dev").inserted == 1
    assert sync_registry(warehouse, store, settings, "prod").inserted == 2
    assert len(read_registry(warehouse, settings, "dev")) == 1
    assert len(read_registry(warehouse, settings, "prod")) == 2
    assert read_registry(warehouse, settings, "staging") == []
    assert registry_table(settings, "prod").dataset == "mlsys_prod"


def test_skops_round_trip(warehouse, store, settings, bucket, models, train):
    saved = save(store, bucket, models[1], artifact_format="skops")
    assert saved.uri.endswith(f"{NAME}/v1/model.skops")
    assert saved.metadata["format"] == "skops"
    sync_registry(warehouse, store, settings, ENV)
    entry = resolve(warehouse, settings, ENV, ModelRef.parse(NAME))
    assert entry.blob_path == f"{NAME}/v1/model.skops"
    assert entry.artifact_format == "skops"
    loaded = load(store, entry, settings)
    assert type(loaded) is LogisticRegression
    np.testing.assert_array_equal(
        loaded.predict_proba(train[NUMERIC]), models[1].predict_proba(train[NUMERIC])
    )


def test_skops_refuses_untrusted_types_until_listed(warehouse, store, settings, bucket, train):
    """The demo's forest holds types skops does not trust by default; the operator lists them."""
    forest = titanic_pipeline(n_estimators=3).fit(train[datasets.FEATURES], train["Survived"])
    save(store, bucket, forest, artifact_format="skops")
    sync_registry(warehouse, store, settings, ENV)
    entry = resolve(warehouse, settings, ENV, ModelRef.parse(NAME))
    with pytest.raises(ArtifactIntegrityError, match="MLSYS_SKOPS_TRUSTED_TYPES") as caught:
        load(store, entry, settings)
    assert "sklearn.tree._tree.Tree" in str(caught.value)

    trusted = settings.model_copy(
        update={"skops_trusted_types": ["numpy.dtype", "sklearn.tree._tree.Tree"]}
    )
    loaded = load(store, entry, trusted)
    np.testing.assert_array_equal(
        loaded.predict(train[datasets.FEATURES]), forest.predict(train[datasets.FEATURES])
    )


def test_an_unchanged_model_saved_again_keeps_its_version_when_asked(store, bucket, models):
    first = save(store, bucket, models[0], reuse_unchanged=True)
    again = save(store, bucket, models[0], reuse_unchanged=True)
    as_skops = save(store, bucket, models[0], reuse_unchanged=True, artifact_format="skops")
    changed = save(store, bucket, models[1], reuse_unchanged=True)
    copy = save(store, bucket, models[1])  # without asking: a new version, as before

    assert (first.version, again.version) == (1, 1) and again.sha256 == first.sha256
    assert again.uri == first.uri and again.metadata["sha256"] == first.sha256
    assert (as_skops.version, changed.version, copy.version) == (2, 3, 4)
    versions = {b.path.split("/")[1] for b in store.list_blobs(bucket, f"{NAME}/")}
    assert versions == {"v1", "v2", "v3", "v4"}
