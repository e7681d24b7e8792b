"""Typed errors of mlsys.

Each carries a message a user can act on. The web layer maps them to problem+json once
(`web/errors.py`); the CLI prints `error: <message>` and exits non-zero.
"""

from __future__ import annotations


class MlsysError(Exception):
    """Base class: something the caller can understand and usually fix."""

    #: HTTP status the web layer answers with.
    status: int = 400
    #: Short, stable title for problem+json.
    title: str = "Bad request"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message

    @property
    def type_slug(self) -> str:
        """Kebab-case name used in problem+json `type` URIs."""
        name = type(self).__name__
        return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


class InvalidIdentifier(MlsysError):
    title = "Invalid identifier"


class InvalidRequest(MlsysError):
    title = "Invalid request"


class UnknownEnvironment(MlsysError):
    title = "Unknown environment"


class TableNotFound(MlsysError):
    status = 404
    title = "Table not found"


class TableNotEmpty(MlsysError):
    status = 409
    title = "Table not empty"


class SchemaMismatch(MlsysError):
    status = 422
    title = "Schema mismatch"


class ModelNotFound(MlsysError):
    status = 404
    title = "Model not found"


class ArtifactIntegrityError(MlsysError):
    status = 409
    title = "Artifact integrity check failed"


class ArtifactExists(MlsysError):
    status = 409
    title = "Artifact already exists"


class PermissionDenied(MlsysError):
    status = 403
    title = "Permission denied"


class BackendUnavailable(MlsysError):
    """A transient failure of a backend (lock held too long, network, 5xx)."""

    status = 503
    title = "Backend unavailable"


class MissingExtra(MlsysError):
    status = 500
    title = "Optional dependency missing"


class JobNotFound(MlsysError):
    status = 404
    title = "Job not found"


class ScheduleNotFound(MlsysError):
    status = 404
    title = "Schedule not found"


class ScheduleLimitReached(MlsysError):
    """The principal already has as many schedules as MLSYS_SCHEDULES_PER_PRINCIPAL allows."""

    status = 409
    title = "Too many schedules"


class JobConflict(MlsysError):
    status = 409
    title = "Job conflict"


class Cancelled(MlsysError):
    """Raised inside a pipeline when its cancel callback says stop."""

    status = 409
    title = "Cancelled"


class BlobNotFound(MlsysError):
    status = 404
    title = "Object not found"


class ProtectedTable(PermissionDenied):
    """A job named one of mlsys' own tables (registry, staging) as its input or output."""

    title = "Protected table"


class ModelFailed(MlsysError):
    """The estimator raised while predicting (bad rows, or a broken model)."""

    status = 500
    title = "Model failed"


class MetadataPending(MlsysError):
    """The version was registered without metadata.json; only a worker may read its features
    off the model (after the hash check), so the check of the input waits for the worker."""

    status = 409
    title = "Model metadata pending"
