"""A registry row as a value (`RegistryEntry`), the registry table's schema and the statuses
a version can have (`active`, `pending`, `missing`, `invalid`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlsys.ids import TableId
from mlsys.models.artifacts import format_of
from mlsys.settings import Settings
from mlsys.tables import MODEL_REGISTRY, arrow_fields

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
