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
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from mlsys.errors import ArtifactIntegrityError, BackendUnavailable, MlsysError, ModelNotFound
from mlsys.ids import ModelRef, TableId, VersionSpec, check_alias, check_model_name
from mlsys.models.artifacts import (
    METADATA_FILE,
    artifact_path,
    format_of,
    parse_artifact_path,
    sha256_hex,
)
from mlsys.registry.pinned import PinnedModel
from mlsys.settings import Settings
from mlsys.store.base import BlobInfo, ModelStore
from mlsys.tables import MODEL_REGISTRY, arrow_fields
from mlsys.warehouse.base import MergeResult, Warehouse

log = logging.getLogger(__name__)

KEYS = ["environment", "model_name", "model_version"]
#: The registry table's Arrow schema, from its one definition (`mlsys.tables`), which infra/
#: creates the BigQuery table from. Nullable throughout: BigQuery enforces the REQUIRED keys.
SCHEMA = arrow_fields(MODEL_REGISTRY)
#: Columns a sync owns; everything but the aliases.
SYNC_COLUMNS = [name for name in SCHEMA.names if name != "aliases"]

ACTIVE, MISSING, INVALID = "active", "missing", "invalid"
#: Registered without metadata.json: features are read from the model in a worker at its first
#: predict, after the hash check (mlsys.registry.pending), because a sync never deserializes.
PENDING = "pending"
#: Statuses whose artifact a worker may load.
LOADABLE = (ACTIVE, PENDING)
_ARTIFACTS = ("model.pkl", "model.skops")


def registry_table(settings: Settings, env: str) -> TableId:
    return TableId(settings.gcp_project_id, settings.dataset_for(env), MODEL_REGISTRY.name)


@dataclass(frozen=True)
class RegistryEntry:
    """One registered model version."""

    model_name: str
    model_version: int
    environment: str
    gcs_bucket: str
    blob_path: str
    file_size_bytes: int
    sha256: str
    generation: int | None
    status: str
    metadata: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    upload_timestamp: datetime | None = None
    registered_at: datetime | None = None
    updated_at: datetime | None = None
    uploader: str | None = None

    @property
    def version(self) -> str:
        return f"v{self.model_version}"

    @property
    def artifact_format(self):
        return format_of(self.blob_path.rsplit("/", 1)[-1]) or "pickle"

    @property
    def features(self) -> list[str]:
        return list(self.metadata.get("features") or [])

    def to_json(self) -> dict[str, Any]:
        """The entry as the API shows it."""
        return {
            "model_name": self.model_name,
            "model_version": self.version,
            "environment": self.environment,
            "status": self.status,
            "aliases": self.aliases,
            "uri": f"{self.gcs_bucket}/{self.blob_path}",
            "file_size_bytes": self.file_size_bytes,
            "sha256": self.sha256,
            "generation": self.generation,
            "uploader": self.uploader,
            "upload_timestamp": _iso(self.upload_timestamp),
            "registered_at": _iso(self.registered_at),
            "updated_at": _iso(self.updated_at),
            "metadata": self.metadata,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RegistryEntry:
        return cls(
            model_name=row["model_name"],
            model_version=int(row["model_version"]),
            environment=row["environment"],
            gcs_bucket=row["gcs_bucket"],
            blob_path=row["blob_path"],
            file_size_bytes=int(row["file_size_bytes"] or 0),
            sha256=row["sha256"] or "",
            generation=None if row["generation"] is None else int(row["generation"]),
            status=row["status"],
            metadata=json.loads(row["metadata"] or "{}"),
            aliases=json.loads(row.get("aliases") or "[]"),
            upload_timestamp=row.get("upload_timestamp"),
            registered_at=row.get("registered_at"),
            updated_at=row.get("updated_at"),
            uploader=row.get("uploader"),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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
        expected = {artifact_path(entry.model_name, entry.model_version, f) for f in _ARTIFACTS}
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
        try:
            row = _scan_version(store, env, name, version, artifact, meta_blob, existing, now)
        except BackendUnavailable:
            raise
        except Exception as error:  # one unreadable version never stops the sync of the others
            log.warning("registry sync %s: %s/v%s: %s", env, name, version, error)
            row = _problem_row(env, name, version, artifact, existing, now, error)
        invalid += row["status"] == INVALID
        previous = existing.get((name, version))
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


def set_alias(
    warehouse: Warehouse, settings: Settings, env: str, name: str, alias: str, version: object
) -> RegistryEntry:
    """Point `alias` at a version of `name`, moving it off any other version."""
    alias = check_alias(alias)
    target = resolve(warehouse, settings, env, ModelRef.parse(check_model_name(name), version))
    now = datetime.now(UTC)
    changes = []
    for entry in read_registry(warehouse, settings, env):
        if entry.model_name != name:
            continue
        aliases = [a for a in entry.aliases if a != alias]
        if entry.model_version == target.model_version:
            aliases = sorted([*aliases, alias])
        if aliases != entry.aliases:
            changes.append(
                {
                    "environment": env,
                    "model_name": name,
                    "model_version": entry.model_version,
                    "aliases": json.dumps(aliases),
                    "updated_at": now,
                }
            )
    if changes:
        schema = pa.schema([SCHEMA.field(n) for n in [*KEYS, "aliases", "updated_at"]])
        batch = pa.Table.from_pylist(changes, schema=schema)
        warehouse.merge(registry_table(settings, env), batch, KEYS)
    return resolve(warehouse, settings, env, ModelRef(name, VersionSpec(alias=alias)))
