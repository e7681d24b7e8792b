"""Save and load model versions: `{model-name}/v{N}/model.pkl|model.skops` + `metadata.json`.

The save helper writes the metadata a batch job needs (features in order, target, id columns,
task, classes) and the artifact's SHA-256. Loading verifies the bytes against the hash the
registry recorded, pinned to the registered object generation, so a model replaced after
registration is refused instead of silently run. A pickle executes code when loaded: only
people trusted to run code may write the model bucket. `model.skops` loads without that risk.
"""

from __future__ import annotations

import getpass
import hashlib
import importlib
import io
import json
import logging
import os
import platform
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import joblib

from mlsys.errors import ArtifactIntegrityError, BlobNotFound, InvalidRequest, ModelNotFound
from mlsys.ids import check_column, check_model_name
from mlsys.models.cache import ModelCache
from mlsys.store.base import ModelStore

ArtifactFormat = Literal["pickle", "skops"]
ARTIFACT_FILES = {"pickle": "model.pkl", "skops": "model.skops"}
METADATA_FILE = "metadata.json"
log = logging.getLogger(__name__)
_VERSION_DIR = re.compile(r"([a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?)/v([1-9][0-9]{0,8})/(.+)")


def artifact_path(name: str, version: int, file: str) -> str:
    return f"{check_model_name(name)}/v{int(version)}/{file}"


def parse_artifact_path(path: str) -> tuple[str, int, str] | None:
    """`titanic-survival/v3/model.pkl` -> ("titanic-survival", 3, "model.pkl"), else None."""
    match = _VERSION_DIR.fullmatch(path)
    return (match.group(1), int(match.group(2)), match.group(3)) if match else None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def infer_metadata(model: Any) -> dict[str, Any]:
    """What can be read off a fitted estimator: features, task, classes."""
    from mlsys.models.labels import model_classes, model_task

    meta: dict[str, Any] = {}
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        meta["features"] = [str(n) for n in names]
    task = model_task(model)
    if task is not None:
        meta["task"] = task
    if task == "classification" and (classes := model_classes(model)) is not None:
        meta["classes"] = classes
    return meta


def build_metadata(
    model: Any,
    *,
    features: list[str] | None,
    target: str | None,
    id_columns: list[str] | None,
    metrics: dict[str, Any] | None,
    description: str | None,
    artifact_format: ArtifactFormat,
    sha256: str,
) -> dict[str, Any]:
    inferred = infer_metadata(model)
    features = list(features or inferred.get("features") or [])
    if not features:
        raise InvalidRequest(
            "The model does not record its input columns (no feature_names_in_).",
            hint="Fit it on a DataFrame, or pass features=[...] when saving.",
        )
    if "task" not in inferred:
        raise InvalidRequest(
            f"{type(model).__name__} is neither a classifier nor a regressor.",
            hint="Save a fitted scikit-learn estimator or Pipeline.",
        )
    return {
        "features": [check_column(f) for f in features],
        "target": check_column(target or "prediction"),
        "id_columns": [check_column(c) for c in (id_columns or [])],
        "task": inferred["task"],
        "classes": inferred.get("classes"),
        "metrics": metrics or {},
        "description": description or "",
        "format": artifact_format,
        "sha256": sha256,
        "estimator": type(model).__name__,
        "uploader": _whoami(),
        "created_at": datetime.now(UTC).isoformat(),
        "library_versions": library_versions(model),
        "trained_in": trained_in(),
    }


def trained_in() -> dict[str, str]:
    """Where the saving code ran, for a version's lineage: the notebook (Jupyter names it in
    JPY_SESSION_NAME) or the script, by file name only (never a path of the machine)."""
    notebook = os.environ.get("JPY_SESSION_NAME")
    if notebook:
        return {"notebook": Path(notebook).name}
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    return {"script": Path(script).name} if script else {}


#: Metadata names of libraries whose import name differs.
_IMPORT_NAMES = {"scikit-learn": "sklearn"}


def _installed_version(library: str) -> str | None:
    if library == "python":
        return platform.python_version()
    name = _IMPORT_NAMES.get(library, library)
    try:
        module = sys.modules.get(name) or importlib.import_module(name)
    except ImportError:
        return None
    return str(getattr(module, "__version__", "")) or None


def library_versions(model: Any) -> dict[str, str]:
    """Versions a model depends on, noted at save time: Python, scikit-learn, numpy, pandas,
    and the package of every estimator in it (lightgbm, xgboost, ...)."""
    libraries = ["python", "scikit-learn", "numpy", "pandas"]
    for step in _estimators(model):
        package = type(step).__module__.split(".")[0]
        if package not in ("sklearn", "builtins", "__main__") and package not in libraries:
            libraries.append(package)
    found = {name: _installed_version(name) for name in libraries}
    return {name: version for name, version in found.items() if version}


def _estimators(model: Any, depth: int = 0) -> list[Any]:
    """The model and the estimators inside it (Pipeline steps, ColumnTransformer parts)."""
    found = [model]
    if depth > 4:
        return found
    parts = getattr(model, "steps", None) or getattr(model, "transformers", None) or []
    for part in parts:
        if isinstance(part, tuple) and len(part) > 1:
            found += _estimators(part[1], depth + 1)
    return found


_WARNED: set[str] = set()


def warn_on_version_drift(model_ref: str, recorded: dict[str, str] | None) -> list[str]:
    """Log a warning (once per model per process) when this process' library versions differ
    from those the model was saved with; returns the differences."""
    drift = [
        f"{name} {saved} (here {here or 'not installed'})"
        for name, saved in (recorded or {}).items()
        if (here := _installed_version(name)) != str(saved)
    ]
    if drift and model_ref not in _WARNED:
        _WARNED.add(model_ref)
        log.warning(
            "%s was saved with %s: predictions may differ from the notebook's",
            model_ref,
            ", ".join(drift),
        )
    return drift


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def serialize(model: Any, artifact_format: ArtifactFormat) -> bytes:
    if artifact_format == "skops":
        import skops.io

        return skops.io.dumps(model)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def deserialize(data: bytes, artifact_format: ArtifactFormat, trusted_types: list[str]) -> Any:
    if artifact_format == "skops":
        import skops.io

        untrusted = skops.io.get_untrusted_types(data=data)
        refused = [t for t in untrusted if t not in trusted_types]
        if refused:
            raise ArtifactIntegrityError(
                f"The skops artifact contains types that are not trusted: {refused}.",
                hint="Review them, then list them in MLSYS_SKOPS_TRUSTED_TYPES.",
            )
        return skops.io.loads(data, trusted=untrusted)
    return joblib.load(io.BytesIO(data))


@dataclass(frozen=True)
class SavedModel:
    name: str
    version: int
    uri: str
    sha256: str
    metadata: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.name}/v{self.version}"


def next_version(store: ModelStore, bucket: str, name: str) -> int:
    versions = [
        parsed[1]
        for blob in store.list_blobs(bucket, f"{check_model_name(name)}/")
        if (parsed := parse_artifact_path(blob.path))
    ]
    return max(versions, default=0) + 1


def save_model(
    model: Any,
    store: ModelStore,
    bucket: str,
    name: str,
    version: int | None = None,
    *,
    features: list[str] | None = None,
    target: str | None = None,
    id_columns: list[str] | None = None,
    metrics: dict[str, Any] | None = None,
    description: str | None = None,
    artifact_format: ArtifactFormat = "pickle",
    training_data: Any = None,
    training_target: Any = None,
    reuse_unchanged: bool = False,
) -> SavedModel:
    """Write `{name}/v{N}/model.*` and `metadata.json`; never overwrite an existing version.

    Args:
        version: the N of vN; default: one more than the highest version in the bucket.
        reuse_unchanged: without `version`, when the highest version already holds these very
            bytes (same format and SHA-256), return it instead of writing a copy as a new
            version (a notebook run again registers nothing new).
        training_data: the training frame (pandas); when given, metadata records its profile
            (features, and the model's predictions on it) and every job compares with it.
        training_target: the training labels, profiled with it.
    Raises:
        ArtifactExists: that version already exists.
        InvalidRequest: the model is not a fitted classifier/regressor with known features.
    """
    check_model_name(name)
    if artifact_format not in ARTIFACT_FILES:
        raise InvalidRequest(f"Unknown artifact format {artifact_format!r}; use pickle or skops.")
    data = serialize(model, artifact_format)
    digest = sha256_hex(data)
    if version is None and reuse_unchanged:
        if same := _latest_if_same(store, bucket, name, artifact_format, digest):
            log.info("%s is unchanged (SHA-256 %s): keeping v%d", name, digest[:12], same.version)
            return same
    version = version or next_version(store, bucket, name)
    metadata = build_metadata(
        model,
        features=features,
        target=target,
        id_columns=id_columns,
        metrics=metrics,
        description=description,
        artifact_format=artifact_format,
        sha256=digest,
    )
    if training_data is not None:
        from mlsys.monitoring.profiles import training_profile

        metadata["profile"] = training_profile(
            model, training_data, metadata["features"], metadata["task"], training_target
        ).to_json()
    model_path = artifact_path(name, version, ARTIFACT_FILES[artifact_format])
    # The model first, with a no-clobber precondition: a version is written once.
    store.write(bucket, model_path, data, if_generation_match=0)
    store.write(
        bucket,
        artifact_path(name, version, METADATA_FILE),
        json.dumps(metadata, indent=2, sort_keys=True, default=str).encode(),
    )
    return SavedModel(name, version, store.uri(bucket, model_path), digest, metadata)


def _latest_if_same(
    store: ModelStore, bucket: str, name: str, artifact_format: ArtifactFormat, digest: str
) -> SavedModel | None:
    """The highest saved version of `name` when its metadata records this artifact."""
    latest = next_version(store, bucket, name) - 1
    if latest < 1:
        return None
    try:
        metadata = json.loads(store.read(bucket, artifact_path(name, latest, METADATA_FILE)))
    except (BlobNotFound, ValueError):  # a bare model.pkl, or unreadable metadata
        return None
    if metadata.get("sha256") != digest or metadata.get("format") != artifact_format:
        return None
    model_path = artifact_path(name, latest, ARTIFACT_FILES[artifact_format])
    return SavedModel(name, latest, store.uri(bucket, model_path), digest, metadata)


#: Verified models of this process; predict sizes it from MLSYS_MODEL_CACHE_MB.
MODEL_CACHE = ModelCache(1024 * 2**20)


def load_verified(
    store: ModelStore,
    bucket: str,
    path: str,
    *,
    sha256: str,
    generation: int | None,
    artifact_format: ArtifactFormat,
    trusted_types: tuple[str, ...] = (),
    cache: ModelCache | None = MODEL_CACHE,
) -> Any:
    """Load a registered artifact, refusing bytes that do not match the registered hash.

    A version already loaded by this process (same bucket, name, version and SHA-256) comes
    from `cache` without touching the store.

    Raises:
        ArtifactIntegrityError: replaced since registration, or the hash differs.
        ModelNotFound: the object is gone.
    """
    key = (store.uri(bucket), parse_artifact_path(path) or path, sha256)
    if cache is not None and (model := cache.get(key)) is not None:
        return model
    try:
        data = store.read(bucket, path, generation=generation)
    except BlobNotFound:
        raise ModelNotFound(
            f"The registered artifact {store.uri(bucket, path)} is gone.",
            hint="Run a registry sync to update the registry.",
        ) from None
    actual = sha256_hex(data)
    if actual != sha256:
        raise ArtifactIntegrityError(
            f"{store.uri(bucket, path)} does not match its registered SHA-256 "
            f"({actual[:12]}… != {sha256[:12]}…).",
            hint="Someone changed the file; re-register it only if the new bytes are trusted.",
        )
    model = deserialize(data, artifact_format, list(trusted_types))
    if cache is not None:
        cache.put(key, model, len(data))
    return model


def format_of(file: str) -> ArtifactFormat | None:
    """`model.pkl` -> pickle, `model.skops` -> skops, anything else -> None."""
    return {name: fmt for fmt, name in ARTIFACT_FILES.items()}.get(file)  # type: ignore[return-value]
