"""Google Cloud Storage model store (`gs://`): one bucket per environment.

Objects are addressed as (bucket, path) and come back as plain `BlobInfo` entities. Reads can be
pinned to a generation (read as `generation=N`: in the versioned models bucket an overwritten
model keeps serving the bytes it was registered with; elsewhere it is refused, never silently
replaced); writes take GCS generation preconditions, so two uploads never clobber each
other. `STORAGE_EMULATOR_HOST` (honoured by google-cloud-storage itself) points the client at a
local emulator with anonymous credentials.
"""

from __future__ import annotations

import os
from typing import Any

import requests

from mlsys import google_clients
from mlsys.errors import (
    ArtifactExists,
    ArtifactIntegrityError,
    BackendUnavailable,
    BlobNotFound,
    InvalidRequest,
    MissingExtra,
    PermissionDenied,
)
from mlsys.settings import Settings, get_settings
from mlsys.store.base import BlobInfo, ModelStore
from mlsys.store.local import check_bucket

try:
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from google.cloud import storage  # noqa: F401 - the extra is installed
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtra(
        "The gs:// model store needs the Google Cloud client libraries.",
        hint="install mlsys[gcp] (uv sync --extra gcp).",
    ) from exc

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
# What the client raises once its own retries (with backoff) are exhausted, or for errors with
# no more specific meaning in the method at hand.
_TRANSIENT_OR_API = (gexc.GoogleAPIError, requests.ConnectionError, requests.Timeout)


def _info(blob: Any) -> BlobInfo:
    # A blob's generation changes exactly when its bytes are replaced, and `time_created` is
    # that generation's creation time; `updated` also moves on metadata-only changes.
    return BlobInfo(
        bucket=blob.bucket.name,
        path=blob.name,
        size=int(blob.size or 0),
        generation=int(blob.generation),
        updated=blob.time_created or blob.updated,
        md5=blob.md5_hash,
        crc32c=blob.crc32c,
        time_created=blob.time_created,
        content_type=blob.content_type,
        metadata=dict(blob.metadata) if blob.metadata else None,
    )


class GCSModelStore(ModelStore):
    """Model artifacts in GCS buckets.

    `BlobInfo.md5` and `BlobInfo.crc32c` are what GCS reports: base64 of the raw digest
    (md5 is absent for composite objects).
    """

    scheme = "gs"

    def __init__(
        self,
        client: Any = None,
        project: str | None = None,
        create_buckets: bool = False,
        location: str | None = None,
    ) -> None:
        """
        Args:
            client: a `google.cloud.storage.Client` (tests inject one); default: a client on
                Application Default Credentials, or anonymous against `STORAGE_EMULATOR_HOST`.
            project: billing project of the default client and of created buckets.
            create_buckets: create a missing bucket on first write. Off in the cloud, where
                Terraform owns buckets; on against an emulator, which starts empty.
            location: where created buckets live (GCP_REGION, as Terraform's buckets do);
                default: GCS' own (the US multi-region).
        """
        self._project = project
        self._location = location
        self._client = client
        self._create_buckets = create_buckets

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> GCSModelStore:
        """Open `gs://` (buckets come per call, one per environment)."""
        settings = settings or get_settings()
        if url.rstrip("/") != "gs:":
            raise InvalidRequest(
                f"Unsupported model store URL {url!r}.",
                hint="Use gs:// alone: buckets come from GCS_BUCKET_MODELS_{ENV}.",
            )
        return cls(
            project=settings.gcp_project_id,
            create_buckets=bool(os.environ.get(EMULATOR_ENV)),
            location=settings.gcp_region,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = google_clients.storage_client(self._project)
            except auth_exc.DefaultCredentialsError as exc:
                raise PermissionDenied(
                    "No Google Cloud credentials found for the gs:// model store.",
                    hint="Run `gcloud auth application-default login` or set "
                    "GOOGLE_APPLICATION_CREDENTIALS.",
                ) from exc
        return self._client

    def uri(self, bucket: str, path: str = "") -> str:
        return f"gs://{check_bucket(bucket)}/{path}" if path else f"gs://{check_bucket(bucket)}"

    def list_blobs(self, bucket: str, prefix: str = "") -> list[BlobInfo]:
        """Objects under `prefix`, sorted by path; a missing bucket lists as empty.

        Raises:
            PermissionDenied, BackendUnavailable.
        """
        try:
            blobs = self.client.list_blobs(check_bucket(bucket), prefix=prefix or None)
            blobs = [_info(b) for b in blobs]
        except gexc.NotFound:
            return []
        except _TRANSIENT_OR_API as exc:
            raise _mapped(exc, self.uri(bucket, prefix)) from exc
        return sorted(blobs, key=lambda info: info.path)

    def stat(self, bucket: str, path: str) -> BlobInfo:
        """Metadata of one object.

        Raises:
            BlobNotFound: no such object (or bucket).
        """
        try:
            blob = self.client.bucket(check_bucket(bucket)).get_blob(path)
        except gexc.NotFound:
            blob = None
        except _TRANSIENT_OR_API as exc:
            raise _mapped(exc, self.uri(bucket, path)) from exc
        if blob is None:
            raise BlobNotFound(f"No object at {self.uri(bucket, path)}.")
        return _info(blob)

    def read(self, bucket: str, path: str, generation: int | None = None) -> bytes:
        """The object's bytes, verified by the client's checksum.

        Args:
            generation: when given, the bytes of that generation (`generation=N` on the
                download): in a versioned bucket (as Terraform makes the models bucket) an
                overwritten object's registered generation stays readable, so a job pinned to
                it keeps loading what was registered.
        Raises:
            BlobNotFound: no such object.
            ArtifactIntegrityError: the object was replaced since `generation`, which the
                bucket no longer keeps (no versioning, or deleted since).
        """
        blob = self.client.bucket(check_bucket(bucket)).blob(path, generation=generation)
        try:
            data = blob.download_as_bytes()
        except gexc.NotFound as exc:
            if generation is not None and self._exists(bucket, path):
                raise self._replaced(bucket, path, generation) from exc
            raise BlobNotFound(f"No object at {self.uri(bucket, path)}.") from exc
        except _TRANSIENT_OR_API as exc:
            raise _mapped(exc, self.uri(bucket, path)) from exc
        # The client records the served generation (x-goog-generation); checking it as well
        # guards against servers that ignore the generation on media downloads.
        served = blob.generation
        if generation is not None and served is not None and int(served) != generation:
            raise self._replaced(bucket, path, generation)
        return data

    def _exists(self, bucket: str, path: str) -> bool:
        try:
            return self.client.bucket(check_bucket(bucket)).get_blob(path) is not None
        except gexc.NotFound:
            return False
        except _TRANSIENT_OR_API as exc:
            raise _mapped(exc, self.uri(bucket, path)) from exc

    def write(
        self, bucket: str, path: str, data: bytes, if_generation_match: int | None = None
    ) -> BlobInfo:
        """Upload `data` in one request (GCS makes it visible atomically).

        Args:
            if_generation_match: 0 means "only if absent", N "only if the current generation
                is N". With a precondition the upload is idempotent, so the client retries it.
        Raises:
            ArtifactExists: the precondition failed.
            InvalidRequest: the bucket does not exist (and `create_buckets` is off).
        """
        gcs_bucket = self.client.bucket(check_bucket(bucket))
        blob = gcs_bucket.blob(path)
        for attempt in (1, 2):
            try:
                blob.upload_from_string(
                    data,
                    content_type="application/octet-stream",
                    if_generation_match=if_generation_match,
                )
                break
            except gexc.PreconditionFailed as exc:
                raise ArtifactExists(
                    f"{self.uri(bucket, path)} already exists "
                    f"(precondition if_generation_match={if_generation_match} failed).",
                    hint="Save a new version instead of overwriting one.",
                ) from exc
            except gexc.NotFound as exc:
                if not self._create_buckets or attempt == 2:
                    raise InvalidRequest(
                        f"Bucket gs://{bucket} does not exist.",
                        hint="Create it (infra/ does, per environment) or fix "
                        "GCS_BUCKET_MODELS_{ENV}.",
                    ) from exc
                self._create_bucket(bucket)
            except _TRANSIENT_OR_API as exc:
                raise _mapped(exc, self.uri(bucket, path)) from exc
        return _info(blob)

    def delete(self, bucket: str, path: str) -> None:
        """Remove an object; missing is fine."""
        try:
            self.client.bucket(check_bucket(bucket)).blob(path).delete()
        except gexc.NotFound:
            pass
        except _TRANSIENT_OR_API as exc:
            raise _mapped(exc, self.uri(bucket, path)) from exc

    def _replaced(self, bucket: str, path: str, generation: int | None) -> ArtifactIntegrityError:
        return ArtifactIntegrityError(
            f"{self.uri(bucket, path)} was replaced after generation {generation} was "
            "registered; refusing to load it.",
            hint="Re-run the registry sync if the new upload is intended.",
        )

    def _create_bucket(self, bucket: str) -> None:
        try:
            self.client.create_bucket(bucket, project=self._project, location=self._location)
        except gexc.Conflict:
            pass  # another writer created it first


def _mapped(exc: Exception, where: str) -> Exception:
    """The mlsys error for a google.api_core error that has no more specific meaning."""
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        return PermissionDenied(
            f"Access to {where} was denied: {exc.message}",
            hint="Grant the service account storage.objects access on the bucket.",
        )
    if isinstance(
        exc,
        gexc.ServerError | gexc.TooManyRequests | gexc.RetryError | requests.RequestException,
    ):
        return BackendUnavailable(f"Cloud Storage is unavailable for {where}: {exc}")
    return InvalidRequest(f"Cloud Storage refused the request for {where}: {exc}")
