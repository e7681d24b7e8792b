"""The model store: the bucket that holds model artifacts, behind one interface (`base.ModelStore`).

Opened by URL: `file:///folder` (embedded) or `gs://` (Google Cloud Storage).
"""

from __future__ import annotations

from mlsys.settings import Settings, get_settings
from mlsys.store.base import BlobInfo, ModelStore
from mlsys.urls import by_scheme

__all__ = ["BlobInfo", "ModelStore", "open_store"]


def _open_local(url: str, settings: Settings) -> ModelStore:
    from mlsys.store.local import LocalModelStore

    return LocalModelStore.from_url(url)


def _open_gcs(url: str, settings: Settings) -> ModelStore:
    from mlsys.store.gcs import GCSModelStore

    return GCSModelStore.from_url(url, settings)


_BACKENDS = {"file": _open_local, "gs": _open_gcs}


def open_store(url: str | None = None, settings: Settings | None = None) -> ModelStore:
    """The model store at `url` (default: settings' MLSYS_MODEL_STORE)."""
    settings = settings or get_settings()
    url = url or settings.model_store
    opener = by_scheme(url, _BACKENDS, "model store", "MLSYS_MODEL_STORE")
    return opener(url, settings)
