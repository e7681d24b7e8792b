"""A job's model, pinned: the registry entry a job resolved when it was submitted.

Every shard of a job loads exactly this artifact (bucket, path, SHA-256, generation), even if an
alias moves or a new version lands while the job runs; a worker checks it against the registry
again before loading (`mlsys.registry.check_pinned`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlsys.registry.entry import RegistryEntry


@dataclass(frozen=True)
class PinnedModel:
    model_name: str
    model_version: int
    gcs_bucket: str
    blob_path: str
    sha256: str
    generation: int | None
    artifact_format: str
    #: Library versions the model was saved with (a worker warns when its own differ).
    library_versions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, entry: RegistryEntry) -> PinnedModel:
        return cls(
            model_name=entry.model_name,
            model_version=entry.model_version,
            gcs_bucket=entry.gcs_bucket,
            blob_path=entry.blob_path,
            sha256=entry.sha256,
            generation=entry.generation,
            artifact_format=entry.artifact_format,
            library_versions=entry.metadata.get("library_versions") or {},
        )

    @property
    def version(self) -> str:
        """`v3`, as the registry and the output's ModelVersion column write it."""
        return f"v{self.model_version}"

    @property
    def ref(self) -> str:
        return f"{self.model_name}/{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "library_versions": dict(self.library_versions)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PinnedModel:
        return cls(
            model_name=data["model_name"],
            model_version=data["model_version"],
            gcs_bucket=data["gcs_bucket"],
            blob_path=data["blob_path"],
            sha256=data["sha256"],
            generation=data["generation"],
            artifact_format=data["artifact_format"],
            library_versions=data.get("library_versions") or {},
        )
