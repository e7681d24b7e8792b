"""Typed errors of mlsys, in families.

Each carries a message a user can act on. The web layer maps them to problem+json once
(`web/errors.py`), whose `type` names the class; `mlsys.client.MlsysClient` rebuilds the class
from it, so a remote caller catches the same exception a local one does. The CLI prints
`error: <message>` and exits non-zero.

Families (catch one to catch all its members):
- `BadInput` (400, 422): the request itself is wrong; fix it and send it again.
- `Forbidden` (403): the caller may not do this.
- `NotFound` (404): a table, model, job, schedule or object that does not exist.
- `Conflict` (409): the request is fine but the state of things refuses it now.
- `Unavailable` (503): a backend failed for a while; the same request may succeed later.
- `ServerFault` (500): the server or the model is broken; a retry will not help.
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
        return slug_of(type(self))


def slug_of(cls: type) -> str:
    """The kebab-case name of an error class (`ModelNotFound` -> `model-not-found`)."""
    return "".join("-" + c.lower() if c.isupper() else c for c in cls.__name__).lstrip("-")


class BadInput(MlsysError):
    """The request is wrong (a name, a value, a shape): fix it and send it again."""

    status = 400
    title = "Bad request"


class Forbidden(MlsysError):
    """The caller may not do this (credentials, roles, protected tables)."""

    status = 403
    title = "Forbidden"


class NotFound(MlsysError):
    """What the request names does not exist."""

    status = 404
    title = "Not found"


class Conflict(MlsysError):
    """The request is valid but the current state of things refuses it."""

    status = 409
    title = "Conflict"


class Unavailable(MlsysError):
    """A backend failed for a while (locks, network, quotas, 5xx): retrying may succeed."""

    status = 503
    title = "Service unavailable"


class ServerFault(MlsysError):
    """The server or the model is broken: retrying the same request will not help."""

    status = 500
    title = "Server fault"


class InvalidIdentifier(BadInput):
    title = "Invalid identifier"


class InvalidRequest(BadInput):
    title = "Invalid request"


class UnknownEnvironment(BadInput):
    title = "Unknown environment"


class TableNotFound(NotFound):
    status = 404
    title = "Table not found"


class TableNotEmpty(Conflict):
    status = 409
    title = "Table not empty"


class SchemaMismatch(BadInput):
    status = 422
    title = "Schema mismatch"


class ModelNotFound(NotFound):
    status = 404
    title = "Model not found"


class ArtifactIntegrityError(Conflict):
    status = 409
    title = "Artifact integrity check failed"


class ArtifactExists(Conflict):
    status = 409
    title = "Artifact already exists"


class PermissionDenied(Forbidden):
    status = 403
    title = "Permission denied"


class BackendUnavailable(Unavailable):
    """A transient failure of a backend (lock held too long, network, 5xx)."""

    status = 503
    title = "Backend unavailable"


class MissingExtra(ServerFault):
    status = 500
    title = "Optional dependency missing"


class JobNotFound(NotFound):
    status = 404
    title = "Job not found"


class ScheduleNotFound(NotFound):
    status = 404
    title = "Schedule not found"


class ScheduleLimitReached(Conflict):
    """The principal already has as many schedules as MLSYS_SCHEDULES_PER_PRINCIPAL allows."""

    status = 409
    title = "Too many schedules"


class JobConflict(Conflict):
    status = 409
    title = "Job conflict"


class Cancelled(Conflict):
    """Raised inside a pipeline when its cancel callback says stop."""

    status = 409
    title = "Cancelled"


class BlobNotFound(NotFound):
    status = 404
    title = "Object not found"


class ProtectedTable(PermissionDenied):
    """A job named one of mlsys' own tables (registry, staging) as its input or output."""

    title = "Protected table"


class ModelFailed(ServerFault):
    """The estimator raised while predicting (bad rows, or a broken model)."""

    status = 500
    title = "Model failed"


class MetadataPending(Conflict):
    """The version was registered without metadata.json; only a worker may read its features
    off the model (after the hash check), so the check of the input waits for the worker."""

    status = 409
    title = "Model metadata pending"
