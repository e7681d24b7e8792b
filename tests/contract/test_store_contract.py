"""What every ModelStore must do, run against each backend that can run here."""

from __future__ import annotations

import pytest

from mlsys.errors import ArtifactExists, ArtifactIntegrityError, BlobNotFound

pytestmark = [pytest.mark.integration, pytest.mark.contract]


def test_write_read_list(store, bucket):
    info = store.write(bucket, "titanic-survival/v1/model.pkl", b"model-bytes")
    store.write(bucket, "titanic-survival/v1/metadata.json", b"{}")
    store.write(bucket, "other/v2/model.pkl", b"x")
    assert info.size == len(b"model-bytes")
    assert store.read(bucket, "titanic-survival/v1/model.pkl") == b"model-bytes"
    paths = [blob.path for blob in store.list_blobs(bucket, "titanic-survival/")]
    assert paths == ["titanic-survival/v1/metadata.json", "titanic-survival/v1/model.pkl"]
    assert len(store.list_blobs(bucket)) == 3
    assert store.stat(bucket, "other/v2/model.pkl").size == 1


def test_missing_objects_are_typed(store, bucket):
    assert store.list_blobs(bucket, "nothing/") == []
    with pytest.raises(BlobNotFound):
        store.read(bucket, "nothing/v1/model.pkl")
    with pytest.raises(BlobNotFound):
        store.stat(bucket, "nothing/v1/model.pkl")
    store.delete(bucket, "nothing/v1/model.pkl")  # deleting what is gone is fine


def test_reads_pin_the_generation(store, bucket):
    first = store.write(bucket, "m/v1/model.pkl", b"one")
    assert store.read(bucket, "m/v1/model.pkl", generation=first.generation) == b"one"
    second = store.write(bucket, "m/v1/model.pkl", b"two")
    assert second.generation != first.generation
    with pytest.raises(ArtifactIntegrityError):
        store.read(bucket, "m/v1/model.pkl", generation=first.generation)


def test_preconditions_do_not_clobber(store, bucket):
    created = store.write(bucket, "m/v1/model.pkl", b"one", if_generation_match=0)
    with pytest.raises(ArtifactExists):
        store.write(bucket, "m/v1/model.pkl", b"two", if_generation_match=0)
    assert store.read(bucket, "m/v1/model.pkl") == b"one"
    store.write(bucket, "m/v1/model.pkl", b"three", if_generation_match=created.generation)
    assert store.read(bucket, "m/v1/model.pkl") == b"three"
    with pytest.raises(ArtifactExists):
        store.write(bucket, "m/v1/model.pkl", b"four", if_generation_match=created.generation)


def test_delete_removes_that_object_and_no_other(store, bucket):
    store.write(bucket, "m/v1/model.pkl", b"one")
    store.write(bucket, "m/v1/metadata.json", b"{}")
    store.write(bucket, "m/v10/model.pkl", b"ten")  # its path starts with the deleted one's
    store.write(bucket, "other/v1/model.pkl", b"other")

    store.delete(bucket, "m/v1/model.pkl")

    assert sorted(b.name for b in store.list_blobs(bucket, "")) == [
        "m/v1/metadata.json",
        "m/v10/model.pkl",
        "other/v1/model.pkl",
    ]
    assert store.read(bucket, "m/v10/model.pkl") == b"ten"


def test_listed_objects_carry_the_blob_attributes_seed_scripts_read(store, bucket):
    written = store.write(bucket, "m/v1/metadata.json", b"{}")
    (blob,) = store.list_blobs(bucket, "m/")
    assert blob.name == "m/v1/metadata.json" and blob.size == 2
    assert blob.generation == written.generation
    assert blob.updated is not None and blob.time_created is not None
    assert blob.time_created.tzinfo is not None
    assert isinstance(blob.content_type, str) and "/" in blob.content_type
    assert blob.metadata is None
