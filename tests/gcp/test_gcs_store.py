"""GCSModelStore through the real google-cloud-storage client, against fake-gcs-server."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import uuid

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from mlsys.errors import (
    ArtifactExists,
    ArtifactIntegrityError,
    BackendUnavailable,
    BlobNotFound,
    InvalidRequest,
    PermissionDenied,
)
from mlsys.settings import Settings
from mlsys.store import open_store
from mlsys.store.gcs import GCSModelStore
from tests.gcp.fakes import strict

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket() -> str:
    return f"models-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(gcs_emulator) -> GCSModelStore:
    client = storage.Client(
        project="mlsys-test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_emulator},
    )
    return GCSModelStore(client=client, project="mlsys-test", create_buckets=True)


def test_write_then_read_list_and_stat(store, bucket):
    info = store.write(bucket, "titanic/v1/model.pkl", b"model-bytes", if_generation_match=0)
    store.write(bucket, "titanic/v1/metadata.json", b"{}")
    store.write(bucket, "other/v1/model.pkl", b"x")

    assert info.size == len(b"model-bytes") and info.generation > 0
    # GCS reports digests as base64 of the raw bytes.
    assert info.md5 == base64.b64encode(hashlib.md5(b"model-bytes").digest()).decode()
    assert info.crc32c
    assert store.read(bucket, "titanic/v1/model.pkl", generation=info.generation) == b"model-bytes"
    listed = store.list_blobs(bucket, "titanic/")
    assert [b.path for b in listed] == ["titanic/v1/metadata.json", "titanic/v1/model.pkl"]
    assert listed[1] == store.stat(bucket, "titanic/v1/model.pkl") == info
    assert store.uri(bucket, "titanic/v1/model.pkl") == f"gs://{bucket}/titanic/v1/model.pkl"


def test_missing_bucket_lists_empty_and_missing_objects_raise(store, bucket):
    assert store.list_blobs(bucket) == []
    with pytest.raises(BlobNotFound):
        store.stat(bucket, "nope")
    with pytest.raises(BlobNotFound):
        store.read(bucket, "nope")
    store.delete(bucket, "nope")  # missing is fine


def test_upload_does_not_clobber(store, bucket):
    first = store.write(bucket, "m/v1/model.pkl", b"one", if_generation_match=0)
    with pytest.raises(ArtifactExists):
        store.write(bucket, "m/v1/model.pkl", b"two", if_generation_match=0)
    with pytest.raises(ArtifactExists):
        store.write(bucket, "m/v1/model.pkl", b"two", if_generation_match=first.generation + 1)
    second = store.write(bucket, "m/v1/model.pkl", b"two", if_generation_match=first.generation)
    assert second.generation != first.generation
    assert store.read(bucket, "m/v1/model.pkl") == b"two"


def test_read_pinned_to_a_replaced_generation_is_refused(store, bucket):
    registered = store.write(bucket, "m/v1/model.pkl", b"registered")
    store.write(bucket, "m/v1/model.pkl", b"tampered")
    with pytest.raises(ArtifactIntegrityError):
        store.read(bucket, "m/v1/model.pkl", generation=registered.generation)


def test_delete_removes_the_object(store, bucket):
    store.write(bucket, "m/v1/model.pkl", b"x")
    store.delete(bucket, "m/v1/model.pkl")
    assert store.list_blobs(bucket) == []


def test_open_store_uses_storage_emulator_host(gcs_emulator, bucket, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    store = open_store("gs://", Settings(GCP_PROJECT_ID="mlsys-test"))
    assert isinstance(store, GCSModelStore)
    store.write(bucket, "a/v1/model.pkl", b"x")  # creates the bucket: emulators start empty
    assert [b.path for b in store.list_blobs(bucket)] == ["a/v1/model.pkl"]


def test_a_bucket_the_store_creates_is_in_the_configured_region(gcs_emulator, bucket, monkeypatch):
    # fake-gcs-server keeps its own location for every bucket: the request itself is checked.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    create = storage.Client.create_bucket
    asked = []

    def recorded(self, bucket_or_name, *args, **kwargs):
        asked.append(kwargs.get("location"))
        return create(self, bucket_or_name, *args, **kwargs)

    monkeypatch.setattr(storage.Client, "create_bucket", recorded)
    store = open_store("gs://", Settings(GCP_PROJECT_ID="mlsys-test", GCP_REGION="europe-west1"))
    store.write(bucket, "a/v1/model.pkl", b"x")

    assert asked == ["europe-west1"]
    assert [b.path for b in store.list_blobs(bucket)] == ["a/v1/model.pkl"]


def test_gs_url_with_a_bucket_is_refused():
    with pytest.raises(InvalidRequest):
        GCSModelStore.from_url("gs://some-bucket", Settings())


# --- what the emulator cannot show: cloud failures, through strict fakes of the client -------
# (tests/gcp/fakes: autospecs whose every method raises unless scripted, all the way down)


def _client(bucket=None, **script) -> storage.Client:
    """A strict storage.Client whose bucket() hands out `bucket` (a strict Bucket)."""
    return strict(storage.Client, **({"bucket": bucket} if bucket else {}), **script)


def _store_raising(exc: Exception) -> GCSModelStore:
    client = _client(strict(storage.Bucket, get_blob=exc), list_blobs=exc)
    return GCSModelStore(client=client)


@pytest.mark.parametrize(
    ("exc", "mapped"),
    [
        (gexc.Forbidden("no storage.objects.list"), PermissionDenied),
        (gexc.ServiceUnavailable("backend down"), BackendUnavailable),
        (gexc.RetryError("deadline", cause=None), BackendUnavailable),
    ],
)
def test_cloud_errors_map_to_mlsys_errors(exc, mapped):
    store = _store_raising(exc)
    with pytest.raises(mapped):
        store.list_blobs("models-b")
    with pytest.raises(mapped):
        store.stat("models-b", "p")
    store.client.list_blobs.assert_called_once_with("models-b", prefix=None)
    store.client.bucket.assert_called_once_with("models-b")


def test_write_to_a_missing_bucket_says_how_to_fix_it():
    blob = strict(storage.Blob, upload_from_string=gexc.NotFound("bucket"))
    client = _client(strict(storage.Bucket, blob=blob))
    with pytest.raises(InvalidRequest, match="does not exist"):
        GCSModelStore(client=client).write("models-b", "p", b"x")
    client.create_bucket.assert_not_called()
    assert blob.upload_from_string.call_args.args == (b"x",)


def test_a_pinned_read_asks_for_its_generation_and_a_vanished_one_is_refused():
    # Real GCS answers 404 for a generation a bucket without versioning no longer keeps.
    blob = strict(storage.Blob, download_as_bytes=gexc.NotFound("no such generation"))
    bucket = strict(storage.Bucket, blob=blob, get_blob=strict(storage.Blob))
    client = _client(bucket)
    with pytest.raises(ArtifactIntegrityError, match="replaced after generation 7"):
        GCSModelStore(client=client).read("models-b", "m/v1/model.pkl", generation=7)
    bucket.blob.assert_called_once_with("m/v1/model.pkl", generation=7)
    blob.download_as_bytes.assert_called_once_with()


def test_a_served_generation_other_than_the_pinned_one_is_refused():
    # Servers that ignore the generation (some emulators) still report what they served.
    blob = strict(storage.Blob, download_as_bytes=b"new bytes")
    blob.generation = 8
    store = GCSModelStore(client=_client(strict(storage.Bucket, blob=blob)))

    with pytest.raises(ArtifactIntegrityError, match="replaced after generation 7"):
        store.read("models-b", "m/v1/model.pkl", generation=7)
    assert store.read("models-b", "m/v1/model.pkl", generation=8) == b"new bytes"


def test_missing_gcp_extra_says_how_to_install_it():
    code = (
        "import sys; sys.modules['google.cloud.storage'] = None\n"
        "from mlsys.errors import MissingExtra\n"
        "from mlsys.store import open_store\n"
        "try:\n    open_store('gs://')\n"
        "except MissingExtra as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "install mlsys[gcp]" in out.stdout


def test_in_a_versioned_bucket_an_overwritten_model_serves_its_registered_generation(store, bucket):
    # Terraform turns versioning on for the models bucket: a job pinned to the registered
    # generation keeps loading those bytes after someone overwrites the object.
    registered = store.write(bucket, "m/v1/model.pkl", b"registered")
    versioned = store.client.get_bucket(bucket)
    versioned.versioning_enabled = True
    versioned.patch()
    store.write(bucket, "m/v1/model.pkl", b"overwritten")

    assert store.read(bucket, "m/v1/model.pkl", generation=registered.generation) == b"registered"
    assert store.read(bucket, "m/v1/model.pkl") == b"overwritten"
