"""The model registry over HTTP: sync jobs, listing versions, moving aliases."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from mlsys import errors
from mlsys.errors import BackendUnavailable, InvalidIdentifier, MlsysError, ModelNotFound
from mlsys.ids import ModelRef, check_alias, check_model_name
from mlsys.jobs import Job, JobKind, JobState, NewJob
from mlsys.registry import RegistryEntry, resolve
from mlsys.registry.listing import MAX_PAGE_SIZE, list_versions
from web.backends import backends
from web.errors import read_json_object
from web.metrics import job_submitted
from web.openapi import doc
from web.policy import Access, policy
from web.principal import Scope, current_principal
from web.schemas import (
    ALIAS_PATTERN,
    MODEL_NAME_PATTERN,
    AliasRequest,
    EnvQuery,
    JobAccepted,
    ModelList,
    ModelListQuery,
    ModelVersion,
    ModelVersions,
    RegistrySyncRequest,
)
from web.submit import accepted, refuse_head, submit_job
from web.waiting import PREFER_HEADER, SeedAnswer, honour_prefer, seed_answer, wait_capped
from worker.dispatch import sender

bp = Blueprint("registry", __name__)

_JOB_EXAMPLE = {"job_id": "5b7d9f1a3c5e7a9b1d3f5a7c9e1b3d5f", "status_url": "/jobs/5b7d9f1a..."}
_ENTRY_EXAMPLE = {
    "model_name": "titanic-survival",
    "model_version": "v1",
    "environment": "dev",
    "status": "active",
    "aliases": ["champion"],
    "uri": "mlsys-models-dev/titanic-survival/v1/model.pkl",
    "file_size_bytes": 1843201,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "generation": 1718000000000000,
    "uploader": "data-scientist@example.com",
    "upload_timestamp": "2024-06-10T08:00:00+00:00",
    "registered_at": "2024-06-10T08:05:00+00:00",
    "updated_at": "2024-06-10T08:05:00+00:00",
    "metadata": {"features": ["Pclass", "Sex", "Age"], "target": "Survived"},
}
_NAME = {"schema": {"pattern": MODEL_NAME_PATTERN}, "example": "titanic-survival"}
_ALIAS = {"schema": {"pattern": ALIAS_PATTERN}, "example": "champion"}


def _sync(env: str) -> Response:
    backends().settings.check_env(env)
    return submit_job(JobKind.REGISTRY_SYNC, {"env": env})


@bp.post("/model-registry")
@policy(Scope.REGISTRY, budget=True)
@doc(
    "Sync the registry of an environment",
    tag="registry",
    body=RegistrySyncRequest,
    responses={202: JobAccepted, 200: JobAccepted},
    errors=(403, 429, 503),
    example=_JOB_EXAMPLE,
    headers=[PREFER_HEADER],
)
def submit_registry_sync() -> Response:
    """Queues a job that scans the environment's model store and merges what changed. With
    `Prefer: wait=N` it answers 200 with the job once it ended within N seconds."""
    return honour_prefer(_sync(RegistrySyncRequest.model_validate(read_json_object()).env))


@bp.get("/model-registry")
@policy(Scope.REGISTRY, budget=True, state_changing=True)
@doc(
    "Sync the registry of an environment (seed-compatible query form)",
    tag="registry",
    query=EnvQuery,
    responses={202: JobAccepted, 200: SeedAnswer},
    errors=(403, 429, 500, 503),
    example=_JOB_EXAMPLE,
    headers=[PREFER_HEADER],
)
def submit_registry_sync_query() -> Response:
    """The seed's GET /model-registry?env=dev, with the seed's contract: it queues the same
    job as POST /model-registry and answers when the registry is synced (200 `{status,
    message}`), 500 naming the job and why it failed, or 202 past MLSYS_SYNC_WAIT_SECONDS."""
    refuse_head()
    return seed_answer(_sync(EnvQuery.model_validate(request.args.to_dict()).env), _synced)


def _synced(result: dict) -> str:
    return (
        f"Registry {result.get('table', '')} synced: {result.get('scanned', 0)} versions "
        f"scanned, {result.get('inserted', 0)} new, {result.get('updated', 0)} updated"
    )


@bp.get("/models")
@policy(Access.SIGNED_IN)
@doc(
    "List registered model versions",
    tag="registry",
    query=ModelListQuery,
    responses={200: ModelList},
    errors=(503,),
    example={"env": "dev", "models": [_ENTRY_EXAMPLE], "next_page_token": None},
)
def list_models() -> Response:
    """The registered versions of every model in the environment, flat, by name then version,
    a page at a time (page_size, default 100): follow next_page_token until it is null."""
    query = ModelListQuery.model_validate(request.args.to_dict())
    found = backends()
    page = list_versions(
        found.warehouse,
        found.settings,
        query.env,
        page_size=query.page_size,
        page_token=query.page_token,
    )
    return jsonify(
        env=query.env,
        models=[entry.to_json() for entry in page.entries],
        next_page_token=page.next_token,
    )


@bp.get("/models/<name>")
@policy(Access.SIGNED_IN)
@doc(
    "List the versions of one model",
    tag="registry",
    query=EnvQuery,
    responses={200: ModelVersions},
    errors=(404, 503),
    example={"env": "dev", "model_name": "titanic-survival", "versions": [_ENTRY_EXAMPLE]},
    path_params={"name": _NAME},
)
def get_model(name: str) -> Response:
    """The versions of `name` in the environment, with their aliases and status."""
    env = EnvQuery.model_validate(request.args.to_dict()).env
    name = check_model_name(name)
    found = backends()
    versions, token = [], None
    while True:  # every version of one model, read in the warehouse a page at a time
        page = list_versions(
            found.warehouse,
            found.settings,
            env,
            page_size=MAX_PAGE_SIZE,
            page_token=token,
            model_name=name,
        )
        versions += page.entries
        if (token := page.next_token) is None:
            break
    if not versions:
        raise ModelNotFound(
            f"Model {name!r} is not registered in {env}.",
            hint="List registered models with GET /models?env=" + env + ".",
        )
    return jsonify(env=env, model_name=name, versions=[e.to_json() for e in versions])


@bp.put("/models/<name>/aliases/<alias>")
@policy(Scope.REGISTRY, budget=True)
@doc(
    "Point an alias at a version",
    tag="registry",
    body=AliasRequest,
    responses={200: ModelVersion, 202: JobAccepted},
    errors=(403, 404, 409, 429, 503),
    example=_ENTRY_EXAMPLE,
    path_params={"name": _NAME, "alias": _ALIAS},
)
def put_alias(name: str, alias: str) -> Response:
    """Moves `alias` (e.g. champion) to `version` of `name`; predictions may then ask for it
    as model_version. The move is a job a worker runs (the API only reads the registry): the
    answer is the version the alias now points at once it is done, or, if that takes longer
    than a few seconds, 202 with the job to poll."""
    body = AliasRequest.model_validate(read_json_object())
    if alias != alias.strip():
        raise InvalidIdentifier(f"Invalid alias {alias!r}.", hint="Remove the surrounding spaces.")
    found = backends()
    env = found.settings.check_env(body.env)
    name, alias = check_model_name(name), check_alias(alias)
    # Refuse what cannot work before queueing anything: unknown model or version (404).
    target = resolve(found.warehouse, found.settings, env, ModelRef.parse(name, body.version))
    params = {"env": env, "model_name": name, "alias": alias, "version": target.version}
    job = submit_alias_move(params, current_principal().name)
    return wait_for_move(job, found.settings.alias_wait_seconds)


def submit_alias_move(params: dict, principal: str) -> Job:
    """Record an alias move as `principal`'s job and send it to a worker."""
    found = backends()
    new = NewJob(JobKind.ALIAS_MOVE, params, principal)
    job, created = found.jobs.submit(new, sender(found.celery))
    if created:
        job_submitted(JobKind.ALIAS_MOVE)
    return job


def wait_for_move(job: Job, seconds: float) -> Response:
    """200 with the entry once the move succeeded; its error if it failed; else 202."""
    done = wait_capped(job.job_id, seconds)[0] or job
    if done.state == JobState.SUCCEEDED and done.result is not None:
        return jsonify(done.result)
    if done.state in (JobState.FAILED, JobState.CANCELLED):
        raise job_failure(done)
    return accepted(done, created=True)


def move_alias_and_wait(
    env: str, name: str, alias: str, version: object, principal: str
) -> RegistryEntry:
    """For pages that need the answer: queue the move, wait for it, return the version the
    alias now points at. Raises the job's error, or BackendUnavailable if it takes too long."""
    found = backends()
    target = resolve(found.warehouse, found.settings, env, ModelRef.parse(name, version))
    params = {
        "env": env,
        "model_name": name,
        "alias": check_alias(alias),
        "version": target.version,
    }
    job = submit_alias_move(params, principal)
    done = wait_capped(job.job_id, found.settings.alias_wait_seconds)[0] or job
    if done.state == JobState.SUCCEEDED:
        return target
    if done.state in (JobState.FAILED, JobState.CANCELLED):
        raise job_failure(done)
    raise BackendUnavailable(
        f"The alias move (job {job.job_id}) is still queued or running.",
        hint="No worker took it yet; see GET /jobs/" + job.job_id + ".",
    )


def job_failure(job: Job) -> MlsysError:
    """The mlsys error a failed job recorded, as the API reports it."""
    error = job.error
    kind = getattr(errors, error.type, None) if error is not None else None
    message = error.message if error is not None else f"Job {job.job_id} was {job.state}."
    if isinstance(kind, type) and issubclass(kind, MlsysError):
        return kind(message, hint=f"See GET /jobs/{job.job_id}.")
    return BackendUnavailable(message, hint=f"See GET /jobs/{job.job_id}; retry shortly.")
