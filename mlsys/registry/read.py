"""Reading the registry: the rows that may be trusted, the entry a `ModelRef` names, and the
check a worker makes of a job's pinned model before loading it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from mlsys.errors import ArtifactIntegrityError, MlsysError, ModelNotFound
from mlsys.ids import ModelRef, VersionSpec
from mlsys.models.artifacts import ARTIFACT_FILES, artifact_path
from mlsys.registry.entry import LOADABLE, RegistryEntry, registry_table
from mlsys.registry.pinned import PinnedModel
from mlsys.settings import Settings
from mlsys.warehouse.base import Warehouse

log = logging.getLogger(__name__)


def read_registry(warehouse: Warehouse, settings: Settings, env: str) -> list[RegistryEntry]:
    """The env's registered versions that may be loaded; any other row is skipped with a
    warning (see `untrusted_reason`), so nothing resolves to it."""
    table = registry_table(settings, env)
    if not warehouse.exists(table):
        return []
    entries = trusted_entries(warehouse.read_table(table).to_pylist(), settings, env, table)
    return sorted(entries, key=lambda e: (e.model_name, e.model_version))


def trusted_entries(
    rows: list[dict[str, Any]], settings: Settings, env: str, table: object
) -> list[RegistryEntry]:
    """The registry rows that may be loaded, as entries; any other is skipped with a warning
    (see `untrusted_reason`)."""
    entries = []
    for row in rows:
        try:
            entry = RegistryEntry.from_row(row)
            reason = untrusted_reason(entry, settings, env)
        except (KeyError, TypeError, ValueError) as error:
            reason = f"malformed row ({type(error).__name__}: {error})"
        if reason is not None:
            log.warning("registry %s: skipping a row that is never loaded: %s", table, reason)
            continue
        entries.append(entry)
    return entries


_SHA256 = re.compile(r"[0-9a-f]{64}")


def untrusted_reason(entry: RegistryEntry, settings: Settings, env: str) -> str | None:
    """Why a registry row must not be loaded, or None.

    The registry table is data, and data can be forged: a row counts only if it is this
    environment's, names this environment's model bucket, points at `{model}/v{N}/model.pkl`
    or `.skops` of its own name and version, and records a SHA-256 (and, on GCS, the object
    generation) to check the bytes against.
    """
    where = f"{entry.model_name!r} v{entry.model_version}"
    if entry.environment != env:
        return f"{where} belongs to environment {entry.environment!r}, not {env!r}"
    bucket = settings.bucket_for(env)
    if entry.gcs_bucket != bucket:
        return f"{where} names bucket {entry.gcs_bucket!r}, not {env}'s model bucket {bucket!r}"
    try:
        expected = {
            artifact_path(entry.model_name, entry.model_version, f) for f in ARTIFACT_FILES.values()
        }
    except MlsysError:
        return f"{where} has an invalid model name"
    if entry.model_version < 1 or entry.blob_path not in expected:
        return f"{where} points at {entry.blob_path!r}, not {' or '.join(sorted(expected))}"
    if entry.status not in LOADABLE:
        return None  # listed with its status, never loaded
    if not _SHA256.fullmatch(entry.sha256 or ""):
        return f"{where} records no SHA-256"
    if settings.model_store.startswith("gs://") and entry.generation is None:
        return f"{where} records no object generation"
    return None


def check_pinned(
    warehouse: Warehouse, settings: Settings, env: str, pinned: PinnedModel
) -> RegistryEntry:
    """The registry entry a job pinned, re-read before its model is loaded: a job record in
    Redis may not name an artifact the registry does not hold.

    Raises:
        ArtifactIntegrityError: the registry holds no loadable version with exactly that
            bucket, path, SHA-256 and generation.
    """
    name, version = pinned.model_name, pinned.model_version
    held = [
        e
        for e in read_registry(warehouse, settings, env)
        if e.model_name == name and e.model_version == version and e.status in LOADABLE
    ]
    fields = ("gcs_bucket", "blob_path", "sha256", "generation", "artifact_format")
    if not held or any(getattr(held[0], f) != getattr(pinned, f) for f in fields):
        raise ArtifactIntegrityError(
            f"The job's model {name}/v{version} in {env} is not the artifact the registry holds; "
            "nothing was loaded.",
            hint="Submit the job again; if it keeps failing, run a registry sync.",
        )
    return held[0]


def resolve(warehouse: Warehouse, settings: Settings, env: str, ref: ModelRef) -> RegistryEntry:
    """The registry entry a reference names: `vN`, `latest` (highest active) or an alias.

    Raises:
        ModelNotFound: no such model, version or alias (the message lists what exists).
        ArtifactIntegrityError: the version is registered but invalid or missing.
    """
    settings.check_env(env)
    versions = [e for e in read_registry(warehouse, settings, env) if e.model_name == ref.name]
    if not versions:
        known = sorted({e.model_name for e in read_registry(warehouse, settings, env)})
        raise ModelNotFound(
            f"Model {ref.name!r} is not registered in {env}.",
            hint=(f"Registered models: {', '.join(known)}." if known else "Nothing is registered.")
            + " Save it to the model store and run a registry sync.",
        )
    spec: VersionSpec = ref.version
    if spec.number is not None:
        match = [e for e in versions if e.model_version == spec.number]
    elif spec.alias is not None:
        match = [e for e in versions if spec.alias in e.aliases]
    else:
        match = (
            [max((e for e in versions if e.status in LOADABLE), key=lambda e: e.model_version)]
            if any(e.status in LOADABLE for e in versions)
            else []
        )
    if not match:
        listed = ", ".join(
            e.version
            + (f" @{' @'.join(e.aliases)}" if e.aliases else "")
            + ("" if e.status in LOADABLE else f" ({e.status})")
            for e in versions
        )
        raise ModelNotFound(
            f"Model {ref.name!r} has no version {spec} in {env}.",
            hint=f"Registered versions: {listed}.",
        )
    entry = match[0]
    if entry.status not in LOADABLE:
        problems = "; ".join(entry.metadata.get("problems", [])) or entry.status
        raise ArtifactIntegrityError(
            f"{ref.name}/{entry.version} in {env} is {entry.status}: {problems}.",
            hint="Fix or re-upload the artifact and run a registry sync.",
        )
    return entry
