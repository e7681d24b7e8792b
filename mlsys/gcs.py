"""The notebook helpers for model files, as the seed had them, over the configured store.

Buckets keep their GCS names (`mlsys-models-{env}`); on the embedded store each bucket is a
folder under MLSYS_HOME/models. Unpickling runs code: load only files you trust.
"""

from __future__ import annotations

import io
from typing import Any

import joblib

from mlsys.settings import get_settings
from mlsys.store import BlobInfo, ModelStore, open_store


def store() -> ModelStore:
    """The model store MLSYS_MODEL_STORE names (a local folder by default)."""
    return open_store(settings=get_settings())


def gcs_get(bucket_name: str, blob_path: str) -> bytes:
    """Download an object's bytes (e.g. a metadata.json)."""
    return store().read(bucket_name, blob_path)


def gcs_put(content: bytes | str, bucket_name: str, blob_path: str) -> BlobInfo:
    """Upload bytes or text."""
    data = content.encode() if isinstance(content, str) else content
    return store().write(bucket_name, blob_path, data)


def gcs_get_pickle(bucket_name: str, blob_path: str) -> Any:
    """Download and unpickle an object (joblib). Only for files you trust: it runs code."""
    return joblib.load(io.BytesIO(gcs_get(bucket_name, blob_path)))


def gcs_put_pickle(obj: Any, bucket_name: str, blob_path: str) -> BlobInfo:
    """Pickle (joblib) and upload an object, e.g. `gcs_put_pickle(model, "mlsys-models-dev",
    "titanic-survival/v1/model.pkl")`. Prefer mlsys.artifacts.save_model for models: it also
    writes metadata.json and the SHA-256 the registry checks."""
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return gcs_put(buffer.getvalue(), bucket_name, blob_path)


def gcs_list_blobs(bucket_name: str, prefix: str = "") -> list[BlobInfo]:
    """List objects; each has the attributes scripts read from a GCS Blob: `name`, `size`,
    `updated`, `time_created`, `content_type`, `metadata`, `generation` (and `md5`, `crc32c`)."""
    return store().list_blobs(bucket_name, prefix)
