"""Versions registered without metadata.json ("metadata pending").

A registry sync never deserializes (a pickle runs code when loaded, and a sync runs on whatever
anyone dropped in the bucket), so a bare `model.pkl` is registered with status `pending`. Its
features, task and classes are read off the fitted estimator by the first job that uses it, in
a worker, after the registry row passed its checks and the bytes their hash; the result is
written back to the registry so later requests are checked at submit like any other version.
A model that does not load, or records no features, marks its version invalid with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from mlsys.errors import ArtifactIntegrityError, BackendUnavailable, MetadataPending
from mlsys.models.artifacts import infer_metadata, load_verified
from mlsys.registry.entry import (
    ACTIVE,
    INVALID,
    KEYS,
    PENDING,
    SCHEMA,
    RegistryEntry,
    registry_table,
)
from mlsys.settings import Settings
from mlsys.store.base import ModelStore
from mlsys.warehouse.base import Warehouse

log = logging.getLogger(__name__)

INFERRED_KEYS = ("features", "task", "classes")


def infer_pending(
    entry: RegistryEntry, warehouse: Warehouse, store: ModelStore | None, settings: Settings
) -> RegistryEntry:
    """The entry with its metadata read off the model, recorded in the registry.

    Args:
        store: None where models must not load (the API): then MetadataPending is raised.
    Raises:
        MetadataPending: no store was given.
        ArtifactIntegrityError: the model does not load or records no features (the version
            is marked invalid with the reason).
    """
    if store is None:
        raise MetadataPending(
            f"{entry.model_name}/{entry.version} was registered without metadata.json.",
            hint="Its features are read from the model by a worker at its first predict.",
        )
    try:
        model = load_verified(
            store,
            entry.gcs_bucket,
            entry.blob_path,
            sha256=entry.sha256,
            generation=entry.generation,
            artifact_format=entry.artifact_format,
            trusted_types=tuple(settings.skops_trusted_types),
        )
        inferred = infer_metadata(model)
    except (BackendUnavailable, ArtifactIntegrityError):
        raise
    except Exception as error:  # any failure of someone else's code is this version's problem
        _mark_invalid(warehouse, settings, entry, _does_not_load(error))
        raise ArtifactIntegrityError(
            f"{entry.model_name}/{entry.version} does not load: {_does_not_load(error)}.",
            hint="Upload a fitted scikit-learn model (with metadata.json, e.g. via save_model).",
        ) from None
    if not inferred.get("features"):
        problem = "no metadata.json and the model records no feature_names_in_"
        _mark_invalid(warehouse, settings, entry, problem)
        raise ArtifactIntegrityError(
            f"{entry.model_name}/{entry.version}: {problem}.",
            hint="Fit it on a DataFrame, or save it with mlsys.models.artifacts.save_model.",
        )
    found = {key: inferred.get(key) for key in INFERRED_KEYS}
    return _mark(warehouse, settings, entry, ACTIVE, {**found, "inferred_from": "model"})


def _does_not_load(error: BaseException) -> str:
    return f"the artifact does not load ({type(error).__name__}: {str(error)[:200]})"


def _mark_invalid(
    warehouse: Warehouse, settings: Settings, entry: RegistryEntry, problem: str
) -> None:
    # The same keys a registry sync keeps for a version read off its model, so the next sync
    # of unchanged bytes keeps it invalid instead of retrying the load.
    nothing = dict.fromkeys(INFERRED_KEYS)
    _mark(
        warehouse,
        settings,
        entry,
        INVALID,
        {**nothing, "inferred_from": "model", "problems": [problem]},
    )


def _mark(
    warehouse: Warehouse,
    settings: Settings,
    entry: RegistryEntry,
    status: str,
    metadata: dict[str, Any],
) -> RegistryEntry:
    metadata = {**entry.metadata, **metadata}
    now = datetime.now(UTC)
    row = {
        "environment": entry.environment,
        "model_name": entry.model_name,
        "model_version": entry.model_version,
        "metadata": json.dumps(metadata, sort_keys=True, default=str),
        "status": status,
        "updated_at": now,
    }
    schema = pa.schema([SCHEMA.field(n) for n in [*KEYS, "metadata", "status", "updated_at"]])
    warehouse.merge(
        registry_table(settings, entry.environment),
        pa.Table.from_pylist([row], schema=schema),
        KEYS,
    )
    log.info(
        "registry %s: %s/%s %s -> %s",
        entry.environment,
        entry.model_name,
        entry.version,
        PENDING,
        status,
    )
    return dataclasses.replace(entry, metadata=metadata, status=status, updated_at=now)
