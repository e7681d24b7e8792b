"""The embedded model store: one folder per bucket, files replaced atomically."""

from __future__ import annotations

import contextlib
import fcntl
import mimetypes
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from mlsys.errors import (
    ArtifactExists,
    ArtifactIntegrityError,
    BlobNotFound,
    InvalidIdentifier,
    InvalidRequest,
)
from mlsys.store.base import BlobInfo, ModelStore

# GCS bucket naming, so a local bucket name also works on GCS.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]")
_SEGMENT = re.compile(r"[A-Za-z0-9_.=-]{1,255}")


def check_bucket(bucket: str) -> str:
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidIdentifier(
            f"Invalid bucket name {bucket!r}.",
            hint="Bucket names are 3-63 lowercase letters, digits, '-', '_' and '.'.",
        )
    return bucket


def check_blob_path(path: str) -> str:
    """A relative object path with no way out of its bucket (no '..', no absolute path)."""
    if not isinstance(path, str) or not path or len(path) > 1024:
        raise InvalidIdentifier(f"Invalid object path {path!r}.")
    parts = path.split("/")
    if any(part in ("", ".", "..") or not _SEGMENT.fullmatch(part) for part in parts):
        raise InvalidIdentifier(
            f"Invalid object path {path!r}.",
            hint="Use relative paths of letters, digits, '-', '_', '.' and '/', without '..'.",
        )
    return path


#: What a model folder holds, looked up without mimetypes (a sync lists every file).
_CONTENT_TYPES = {"json": "application/json", "pkl": "application/octet-stream"}


def _content_type(path: str) -> str:
    known = _CONTENT_TYPES.get(path.rpartition(".")[2])
    return known or mimetypes.guess_type(path)[0] or "application/octet-stream"


def _generation(stat: os.stat_result) -> int:
    # A replaced file has a new mtime (ns resolution) and a new inode: either tells.
    return stat.st_mtime_ns ^ (stat.st_ino << 1)


class LocalModelStore(ModelStore):
    """Buckets are folders under `root`; object paths are files inside them."""

    scheme = "file"
    fork_safe = True  # plain files: nothing to share with a forked child

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    @classmethod
    def from_url(cls, url: str) -> LocalModelStore:
        parsed = urlparse(url)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise InvalidRequest(
                f"Invalid model store URL {url!r}.", hint="Use file:///absolute/path/to/models."
            )
        return cls(Path(unquote(parsed.path)))

    def __repr__(self) -> str:
        return f"LocalModelStore({str(self.root)!r})"

    def _file(self, bucket: str, path: str) -> Path:
        return self.root / check_bucket(bucket) / PurePosixPath(check_blob_path(path))

    def uri(self, bucket: str, path: str = "") -> str:
        base = (self.root / check_bucket(bucket)).as_uri()
        return f"{base}/{check_blob_path(path)}" if path else base

    def _info(self, bucket: str, path: str, stat: os.stat_result) -> BlobInfo:
        # Files are replaced whole (os.replace), so the mtime is when this generation was made.
        written = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
        return BlobInfo(
            bucket=bucket,
            path=path,
            size=stat.st_size,
            generation=_generation(stat),
            updated=written,
            time_created=written,
            content_type=_content_type(path),
        )

    def list_blobs(self, bucket: str, prefix: str = "") -> list[BlobInfo]:
        folder = self.root / check_bucket(bucket)
        if not folder.is_dir():
            return []
        # Plain strings and os.scandir: a registry sync lists every file of the bucket, and
        # pathlib objects per file made listing 10,000 versions take seconds.
        blobs: list[BlobInfo] = []
        pending = [(str(folder), "")]
        while pending:
            directory, relative = pending.pop()
            with contextlib.suppress(FileNotFoundError), os.scandir(directory) as entries:
                for entry in entries:
                    path = relative + entry.name
                    if entry.is_dir():  # as os.walk: never into a linked folder
                        if not entry.is_symlink() and (
                            path.startswith(prefix) or prefix.startswith(path + "/")
                        ):
                            pending.append((entry.path, path + "/"))
                    elif entry.name.startswith("."):  # temp files of writes in flight, the lock
                        continue
                    elif path.startswith(prefix):
                        with contextlib.suppress(FileNotFoundError):
                            blobs.append(self._info(bucket, path, entry.stat()))
        return sorted(blobs, key=lambda blob: blob.path)

    def stat(self, bucket: str, path: str) -> BlobInfo:
        try:
            return self._info(bucket, path, self._file(bucket, path).stat())
        except FileNotFoundError:
            raise BlobNotFound(f"No object {self.uri(bucket, path)}.") from None

    def read(self, bucket: str, path: str, generation: int | None = None) -> bytes:
        try:
            with open(self._file(bucket, path), "rb") as handle:
                # Check the generation of the very file we read from, not of the path.
                if generation is not None and _generation(os.fstat(handle.fileno())) != generation:
                    raise ArtifactIntegrityError(
                        f"{self.uri(bucket, path)} was replaced after it was registered.",
                        hint="Re-register the model (registry sync) if the new file is trusted.",
                    )
                return handle.read()
        except FileNotFoundError:
            raise BlobNotFound(f"No object {self.uri(bucket, path)}.") from None

    @contextlib.contextmanager
    def _bucket_lock(self, bucket: str) -> Iterator[None]:
        folder = self.root / check_bucket(bucket)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write(
        self, bucket: str, path: str, data: bytes, if_generation_match: int | None = None
    ) -> BlobInfo:
        target = self._file(bucket, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}"
        tmp.write_bytes(data)
        try:
            with self._bucket_lock(bucket):
                if if_generation_match is not None:
                    current = target.stat() if target.exists() else None
                    actual = _generation(current) if current else 0
                    if actual != if_generation_match:
                        raise ArtifactExists(
                            f"{self.uri(bucket, path)} "
                            + ("already exists." if actual else "does not exist.")
                            + " Nothing was written.",
                            hint="Save as a new version instead of overwriting one.",
                        )
                os.replace(tmp, target)
                return self._info(bucket, path, target.stat())
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, bucket: str, path: str) -> None:
        self._file(bucket, path).unlink(missing_ok=True)
