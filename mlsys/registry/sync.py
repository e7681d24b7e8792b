"""The model registry: scan the model store, MERGE into `{project}.mlsys_{env}.model_registry`.

One row per (environment, model_name, model_version). A sync reads every artifact whose object
generation changed since the last sync, hashes it and merges; a re-sync with no change writes
nothing. Versions that disappeared from the bucket stay, marked `missing`; an artifact whose
bytes disagree with the hash in its metadata is marked `invalid` and never loads.
Aliases (`champion`, ...) belong to the registry, not the bucket: sync never touches them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from mlsys.errors import BackendUnavailable
from mlsys.ids import TableId
from mlsys.models.artifacts import (
    METADATA_FILE,
    parse_artifact_path,
    sha256_hex,
)
from mlsys.registry.entry import (
    ACTIVE,
    INVALID,
    KEYS,
    MISSING,
    PENDING,
    SCHEMA,
    SYNC_COLUMNS,
    RegistryEntry,
    registry_table,
)
from mlsys.registry.read import read_registry
from mlsys.settings import Settings
from mlsys.store.base import BlobInfo, ModelStore
from mlsys.warehouse.base import MergeResult, Warehouse

log = logging.getLogger(__name__)

#: Key of a row's metadata naming the generation of metadata.json it was read from (what a
#: sync compares to skip reading an unchanged metadata.json again).
METADATA_GENERATION = "metadata_generation"


@dataclass(frozen=True)
class SyncResult:
    env: str
    table: str
    scanned: int
    inserted: int
    updated: int
    invalid: int
    missing: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _ensure_table(warehouse: Warehouse, table: TableId) -> None:
    if not warehouse.exists(table):
        warehouse.merge(table, SCHEMA.empty_table(), KEYS)


def sync_registry(
    warehouse: Warehouse, store: ModelStore, settings: Settings, env: str
) -> SyncResult:
    """Scan the env's bucket and merge what changed into its registry table."""
    table = registry_table(settings, env)
    existing = {(e.model_name, e.model_version): e for e in read_registry(warehouse, settings, env)}
    by_version = _stored_versions(store, settings.bucket_for(env))
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    invalid = 0
    for (name, version), files in sorted(by_version.items()):
        artifact = next((files[f] for f in ("model.skops", "model.pkl") if f in files), None)
        if artifact is None:
            continue
        meta_blob = files.get(METADATA_FILE)
        previous = existing.get((name, version))
        if _unchanged(previous, artifact, meta_blob):
            # Neither object has a new generation: nothing to read, nothing to merge.
            invalid += previous.status == INVALID
            continue
        try:
            row = _scan_version(store, env, name, version, artifact, meta_blob, existing, now)
        except BackendUnavailable:
            raise
        except Exception as error:  # one unreadable version never stops the sync of the others
            log.warning("registry sync %s: %s/v%s: %s", env, name, version, error)
            row = _problem_row(env, name, version, artifact, existing, now, error)
        invalid += row["status"] == INVALID
        # An unchanged version is left out of the merge: a re-sync of a big registry then
        # sends nothing (the merge would also find nothing to change, after uploading it all).
        if previous is None or row["updated_at"] != previous.updated_at:  # see _scan_version
            rows.append(row)

    gone = _missing_rows(existing, by_version, now)
    rows += gone

    _ensure_table(warehouse, table)
    result = MergeResult(0, 0)
    if rows:
        batch = pa.Table.from_pylist(rows, schema=SCHEMA).select(SYNC_COLUMNS)
        result = warehouse.merge(table, batch, KEYS)
    log.info("registry sync %s: %s", env, result)
    return SyncResult(
        env=env,
        table=str(table),
        scanned=len(by_version),
        inserted=result.inserted,
        updated=result.updated,
        invalid=invalid,
        missing=len(gone),
    )


def _stored_versions(store: ModelStore, bucket: str) -> dict[tuple[str, int], dict[str, BlobInfo]]:
    """The bucket's model versions, each with its files by name."""
    by_version: dict[tuple[str, int], dict[str, BlobInfo]] = {}
    for blob in store.list_blobs(bucket):
        parsed = parse_artifact_path(blob.path)
        if parsed:
            by_version.setdefault(parsed[:2], {})[parsed[2]] = blob
    # A version is there only while its model file is: a metadata.json left behind is not one.
    return {k: f for k, f in by_version.items() if {"model.skops", "model.pkl"} & f.keys()}


def _missing_rows(
    existing: dict[tuple[str, int], RegistryEntry],
    stored: dict[tuple[str, int], dict[str, BlobInfo]],
    now: datetime,
) -> list[dict[str, Any]]:
    """Rows marking MISSING the registered versions whose files are gone (once)."""
    rows = []
    for key, entry in existing.items():
        if key not in stored and entry.status != MISSING:
            row = _entry_row(entry)
            row.update(status=MISSING, updated_at=now)
            rows.append(row)
    return rows


def _entry_row(entry: RegistryEntry) -> dict[str, Any]:
    return {
        "model_name": entry.model_name,
        "model_version": entry.model_version,
        "environment": entry.environment,
        "gcs_bucket": entry.gcs_bucket,
        "blob_path": entry.blob_path,
        "file_size_bytes": entry.file_size_bytes,
        "upload_timestamp": entry.upload_timestamp,
        "uploader": entry.uploader,
        "registered_at": entry.registered_at,
        "metadata": json.dumps(entry.metadata, sort_keys=True),
        "sha256": entry.sha256,
        "md5_hash": None,
        "crc32c": None,
        "generation": entry.generation,
        "status": entry.status,
        "updated_at": entry.updated_at,
    }


_INFERRED = ("features", "task", "classes", "inferred_from")


def _problem_row(env, name, version, artifact, existing, now, error) -> dict[str, Any]:
    """The row of a version whose files could not be read: invalid, with the reason."""
    previous = existing.get((name, version))
    problem = f"the artifact could not be read ({type(error).__name__}: {error})"
    return {
        "model_name": name,
        "model_version": version,
        "environment": env,
        "gcs_bucket": artifact.bucket,
        "blob_path": artifact.path,
        "file_size_bytes": artifact.size,
        "upload_timestamp": artifact.updated,
        "uploader": None,
        "registered_at": previous.registered_at if previous else now,
        "metadata": json.dumps({"problems": [problem]}),
        "sha256": "",
        "md5_hash": artifact.md5,
        "crc32c": artifact.crc32c,
        "generation": artifact.generation,
        "status": INVALID,
        "updated_at": now,
    }


def _unchanged(
    previous: RegistryEntry | None, artifact: BlobInfo, meta_blob: BlobInfo | None
) -> bool:
    """Whether a registered version's objects are the generations its row was made from: the
    artifact's (`generation`) and metadata.json's (kept in the row's metadata as
    METADATA_GENERATION), so a sync of an unchanged bucket reads no object at all."""
    if previous is None or previous.status == MISSING or not previous.sha256:
        return False
    if (previous.generation, previous.blob_path) != (artifact.generation, artifact.path):
        return False
    return previous.metadata.get(METADATA_GENERATION) == (
        meta_blob.generation if meta_blob is not None else None
    )


def _scan_version(store, env, name, version, artifact, meta_blob, existing, now) -> dict:
    previous = existing.get((name, version))
    metadata: dict[str, Any] = {}
    problems: list[str] = []
    if meta_blob is not None:
        try:
            metadata = json.loads(store.read(artifact.bucket, meta_blob.path))
            if not isinstance(metadata, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError) as error:
            problems.append(f"metadata.json is not valid JSON ({error})")
            metadata = {}
    unchanged = (
        previous is not None
        and previous.generation == artifact.generation
        and previous.blob_path == artifact.path
        and previous.sha256
    )
    if unchanged:
        digest = previous.sha256
        if not metadata.get("features") and previous.metadata.get("inferred_from") == "model":
            # Read off the model by a worker (mlsys.registry.pending): keep it, and why it failed.
            metadata = {**metadata, **{k: previous.metadata.get(k) for k in _INFERRED}}
            if previous.status == INVALID:
                problems += previous.metadata.get("problems") or []
    else:
        # Hashed, never deserialized: loading a pickle runs its code, and a sync runs on
        # whatever anyone dropped in the bucket.
        data = store.read(artifact.bucket, artifact.path, generation=artifact.generation)
        digest = sha256_hex(data)
    declared = metadata.get("sha256")
    if declared and declared != digest:
        problems.append(f"SHA-256 of the artifact differs from metadata.json ({declared[:12]}…)")
    if problems:
        metadata = {**metadata, "problems": problems}
    if meta_blob is not None:
        metadata = {**metadata, METADATA_GENERATION: meta_blob.generation}
    row = {
        "model_name": name,
        "model_version": version,
        "environment": env,
        "gcs_bucket": artifact.bucket,
        "blob_path": artifact.path,
        "file_size_bytes": artifact.size,
        "upload_timestamp": artifact.updated,
        "uploader": metadata.get("uploader"),
        "registered_at": previous.registered_at if previous else now,
        "metadata": json.dumps(metadata, sort_keys=True, default=str),
        "sha256": digest,
        "md5_hash": artifact.md5,
        "crc32c": artifact.crc32c,
        "generation": artifact.generation,
        "status": INVALID if problems else ACTIVE if metadata.get("features") else PENDING,
        "updated_at": now,
    }
    if previous is not None and _same(previous, row):
        row["updated_at"] = previous.updated_at
    return row


def _same(previous: RegistryEntry, row: dict[str, Any]) -> bool:
    old = _entry_row(previous)
    fields = ("blob_path", "file_size_bytes", "sha256", "generation", "status", "metadata")
    return all(old[f] == row[f] for f in fields)
