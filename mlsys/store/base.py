"""The ModelStore interface: buckets of objects, the way GCS has them.

The embedded store keeps a folder per bucket; GCS is GCS. Callers address objects as
(bucket, path) and get plain `BlobInfo` entities, never SDK objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class BlobInfo:
    """What the store knows about one object."""

    bucket: str
    path: str
    size: int
    #: Changes whenever the object's bytes are replaced (GCS generation; local: a counter
    #: derived from the file's inode and mtime). Reads can be pinned to it.
    generation: int
    updated: datetime
    md5: str | None = None
    crc32c: str | None = None
    #: When this generation was written (GCS `time_created`; local: the file's mtime).
    time_created: datetime | None = None
    content_type: str | None = None
    #: Custom metadata (GCS `metadata`), None when there is none, as on a GCS Blob.
    metadata: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """The object's full path in its bucket, as `google.cloud.storage.Blob.name`."""
        return self.path


class ModelStore(ABC):
    """Object storage addressed by bucket and path."""

    scheme: str = ""
    #: Whether a forked child may keep using this object (no live connection between calls).
    fork_safe: bool = False

    @abstractmethod
    def uri(self, bucket: str, path: str = "") -> str:
        """Human-readable location, e.g. gs://bucket/path or file:///..."""

    @abstractmethod
    def list_blobs(self, bucket: str, prefix: str = "") -> list[BlobInfo]:
        """Objects under `prefix`, sorted by path. A missing bucket lists as empty."""

    @abstractmethod
    def stat(self, bucket: str, path: str) -> BlobInfo:
        """Raises BlobNotFound."""

    @abstractmethod
    def read(self, bucket: str, path: str, generation: int | None = None) -> bytes:
        """The object's bytes.

        Args:
            generation: when given, only that generation is returned.
        Raises:
            BlobNotFound: no such object.
            ArtifactIntegrityError: the object was replaced since `generation`.
        """

    @abstractmethod
    def write(
        self, bucket: str, path: str, data: bytes, if_generation_match: int | None = None
    ) -> BlobInfo:
        """Store `data` atomically (readers see the old or the new bytes, never a mix).

        Args:
            if_generation_match: precondition as in GCS: 0 means "only if absent", N means
                "only if the current generation is N".
        Raises:
            ArtifactExists: the precondition failed.
        """

    @abstractmethod
    def delete(self, bucket: str, path: str) -> None:
        """Remove an object; missing is fine."""
