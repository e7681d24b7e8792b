"""What the dashboard reads and changes, through the same public APIs the JSON routes use.

The one place the pages meet the job engine and the registry: views never touch Redis or
warehouse tables themselves.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mlsys.errors import JobNotFound, ModelNotFound, PermissionDenied
from mlsys.ids import check_model_name
from mlsys.jobs import Job, JobKind, JobState
from mlsys.jobs.schedules import Schedule, ScheduleStore
from mlsys.monitoring import PREDICTION, PROBABILITY
from mlsys.monitoring.stats import history, read_stats, stats_table
from mlsys.registry import LOADABLE, RegistryEntry, read_registry
from mlsys.warehouse.bq_sql import string_literal
from web.backends import backends
from web.jobs import readable
from web.predict import enqueue_predict
from web.principal import Principal, Scope
from web.schedules import check_resume
from web.submit import submit_job
from worker.app import QUEUE
from worker.beat import install, next_run, remove

PAGE_SIZE = 50
#: The monitoring profiles of a job's outputs shown as charts, and their titles.
OUTPUT_FEATURES = {
    PREDICTION: "Predictions",
    PROBABILITY: "Probability of the predicted class",
}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobFilter:
    """What the jobs page shows: one state, one kind, a page size."""

    state: str | None = None
    kind: str | None = None
    limit: int = PAGE_SIZE
    principal: str | None = None  # an admin's choice of whose jobs; others see their own
    page_token: str | None = None  # where an older page starts (the engine's token)
    model: str | None = None  # only jobs of this model (by name)
    since: datetime | None = None  # submitted at or after
    until: datetime | None = None  # submitted before

    @property
    def from_day(self) -> str:
        """The first day shown, as the form's date field holds it ('' for none)."""
        return self.since.date().isoformat() if self.since else ""

    @property
    def to_day(self) -> str:
        """The last day shown (`until` is the midnight after it)."""
        return (self.until - timedelta(days=1)).date().isoformat() if self.until else ""


def _owner(principal: Principal) -> str | None:
    """Whose jobs `principal` may see: its own, or everyone's (None) with the admin scope."""
    return None if principal.is_admin else principal.name


def list_jobs(principal: Principal, wanted: JobFilter) -> tuple[list[dict[str, Any]], str | None]:
    """One page, most recent first, of the jobs `principal` may see; and the next page's
    token (None on the last page)."""
    state = JobState(wanted.state) if wanted.state else None
    kind = JobKind(wanted.kind) if wanted.kind else None
    owner = _owner(principal)
    if owner is None and wanted.principal:
        owner = wanted.principal
    model = wanted.model
    page = backends().jobs.page(
        owner,
        state,
        kind,
        wanted.limit,
        wanted.page_token,
        since=wanted.since,
        until=wanted.until,
        where=(lambda job: job.params.get("model_name") == model) if model else None,
    )
    return [job.to_json() for job in page.jobs], page.next_page_token


def find_jobs(principal: Principal, prefix: str) -> list[dict[str, Any]]:
    """The jobs the principal may see whose id starts with `prefix`, newest first."""
    return [job.to_json() for job in backends().jobs.find_prefix(prefix, _owner(principal))]


def get_job(principal: Principal, job_id: str) -> dict[str, Any]:
    """One job, or JobNotFound (also for another principal's job: its existence is private)."""
    job = backends().jobs.get(job_id, _owner(principal))
    if job is None:
        raise JobNotFound(f"No job {job_id!r}.", hint="Pick a job from the jobs page.")
    return job.to_json()


def cancel_job(principal: Principal, job_id: str) -> dict[str, Any]:
    """Cancel a job the principal may see (the engine refuses a finished or committing one)."""
    return backends().jobs.cancel(job_id, _owner(principal)).to_json()


def environments() -> list[str]:
    return list(backends().settings.environments)


def registry(env: str) -> list[RegistryEntry]:
    """Every registered version in `env`, by model then version."""
    found = backends()
    found.settings.check_env(env)
    return read_registry(found.warehouse, found.settings, env)


def move_alias(
    principal: Principal, env: str, name: str, alias: str, version: str
) -> RegistryEntry:
    """Point `alias` of `name` at `version`, as PUT /models/{name}/aliases/{alias} does."""
    if not principal.has(Scope.REGISTRY):
        raise PermissionDenied(
            f"{principal.name} may not move aliases.", hint="Ask for a token with 'registry'."
        )
    found = backends()
    found.settings.check_env(env)
    # A registry write: a worker runs it as a job (the web process only reads).
    from web.registry import move_alias_and_wait

    return move_alias_and_wait(env, check_model_name(name), alias, version, principal.name)


def warehouse_kind() -> str:
    """'bigquery' or 'duckdb': how the output table can be queried."""
    return "bigquery" if backends().settings.warehouse.startswith("bigquery") else "duckdb"


def output_profiles(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The merged profiles of a finished predict job's outputs, from the monitoring table:
    {"__prediction__": {...}, "__probability__": {...}} (empty when not monitored)."""
    params = job.get("params") or {}
    if job["kind"] != "predict" or job["state"] != JobState.SUCCEEDED or not params.get("env"):
        return {}
    found = backends()
    try:
        table = stats_table(found.settings, params["env"])
        if not found.warehouse.exists(table):
            return {}
        job_id = string_literal(job["job_id"])
        frame = found.warehouse.query(
            # mlsys.monitoring's names of the model's outputs among the profiled features.
            f"SELECT feature, profile FROM `{table}` WHERE job_id = {job_id} "
            f"AND feature IN ({', '.join(string_literal(name) for name in OUTPUT_FEATURES)})"
        )
    except Exception as error:
        # A chart is a nicety: the job page still answers when the warehouse does not.
        log.warning("no prediction profile for job %s: %s", job["job_id"], type(error).__name__)
        return {}
    return {row["feature"]: json.loads(row["profile"]) for row in frame.to_dict("records")}


def _schedule_store() -> ScheduleStore:
    return ScheduleStore(backends().jobs.client)


def _schedule_owner(principal: Principal) -> str | None:
    """Whose schedules a principal sees: their own, or (admin) everyone's."""
    return None if principal.is_admin else principal.name


def list_schedules(principal: Principal, runs: int = 5) -> list[dict[str, Any]]:
    """The principal's schedules, newest first, with the next run and the last few runs, as
    GET /schedules shows them."""
    found, store = backends(), _schedule_store()
    out = []
    for item in store.list(principal=_schedule_owner(principal)):
        last = store.runs(item.schedule_id, runs)
        for run in last:
            run["job_state"] = found.jobs.state(run["job_id"]) if run.get("job_id") else None
        out.append({**item.to_json(), "next_run_at": next_run(found.celery, item), "runs": last})
    return out


def get_schedule(principal: Principal, schedule_id: str) -> Schedule:
    """A schedule the principal may see (ScheduleNotFound otherwise)."""
    return _schedule_store().require(schedule_id, _schedule_owner(principal))


def delete_schedule(principal: Principal, schedule_id: str) -> Schedule:
    """Delete a schedule as DELETE /schedules/{id} does: its beat entry, then its record."""
    store = _schedule_store()
    item = store.require(schedule_id, _schedule_owner(principal))
    remove(backends().celery, item)
    store.delete(item.schedule_id)
    return item


def schedule_min_interval() -> float:
    return backends().settings.schedule_min_interval


def set_paused(principal: Principal, schedule_id: str, paused: bool) -> Schedule:
    """Pause or resume a schedule, as PATCH /schedules/{id} with {"paused": ...} does."""
    if not principal.has(Scope.PREDICT):
        raise PermissionDenied(
            f"{principal.name} may not change schedules.", hint="Ask for a token with 'predict'."
        )
    store = _schedule_store()
    item = store.require(schedule_id, _schedule_owner(principal))
    changes = {"paused": True} if paused else check_resume(item, principal)
    updated = store.update(item, **changes)
    install(backends().celery, updated, QUEUE)
    return updated


def sync_registry(principal: Principal, env: str) -> str:
    """Queue a registry sync of `env` exactly as POST /model-registry does; its job id."""
    if not principal.has(Scope.REGISTRY):
        raise PermissionDenied(
            f"{principal.name} may not sync the registry.", hint="Ask for a token with 'registry'."
        )
    backends().settings.check_env(env)
    answer = submit_job(JobKind.REGISTRY_SYNC, {"env": env})  # the API's own submit path
    return answer.get_json()["job_id"]


def model_choices(env: str) -> dict[str, list[str]]:
    """Each registered model of `env` with what a prediction may name: latest, its loadable
    versions (newest first) and its aliases."""
    out: dict[str, list[str]] = {}
    for entry in registry(env):
        if entry.status not in LOADABLE:
            continue
        refs = out.setdefault(entry.model_name, ["latest"])
        refs.insert(1, entry.version)
        refs.extend(f"@{alias}" for alias in entry.aliases)
    return out


def submit_prediction(body: Any) -> str:
    """Queue a prediction exactly as POST /predict does (`body` a validated PredictRequest);
    its job id. Raises what the API answers as 4xx problems."""
    return enqueue_predict(dict(body)).get_json()["job_id"]


def version_entry(entries: list[RegistryEntry], version: str) -> RegistryEntry:
    """One version (`v3`) among a model's registered `entries`, whatever its status: the page
    shows invalid ones too."""
    for entry in entries:
        if entry.version == version:
            return entry
    name = entries[0].model_name if entries else "this model"
    raise ModelNotFound(
        f"No version {version!r} of {name}.", hint="Pick a version on the models page."
    )


def drift_history(env: str, entry: RegistryEntry, limit: int = 20) -> list[dict[str, Any]]:
    """The monitoring of the last jobs that ran this version and the caller may read, oldest
    first, as GET /models/{name}/versions/{v}/monitoring answers it."""
    found = backends()
    try:
        rows = read_stats(
            found.warehouse, found.settings, env, entry.model_name, entry.model_version
        )
    except Exception as error:
        # A history is a nicety: the version page still answers when the warehouse does not.
        log.warning("no drift history for %s: %s", entry.model_name, type(error).__name__)
        return []
    return history(readable(rows))[-limit:]


def _ran(job: Job, name: str, version: str) -> bool:
    """Whether a predict job ran (or, before it resolved, asked for) `version` of `name`."""
    if job.params.get("model_name") != name:
        return False
    ran = (job.result or {}).get("model")
    if isinstance(ran, str):
        return ran.rpartition("/")[2] == version
    return job.params.get("model_version") == version


def jobs_of_version(principal: Principal, name: str, version: str, limit: int = 20):
    """The latest predict jobs the principal may see that ran this version, among the
    latest jobs the engine reads for one page (`JobStore.page`'s scan budget)."""
    page = backends().jobs.page(
        _owner(principal), kind=JobKind.PREDICT, limit=limit, where=lambda j: _ran(j, name, version)
    )
    return [job.to_json() for job in page.jobs]


def schedules_of_version(principal: Principal, entry: RegistryEntry, is_latest: bool):
    """The schedules the principal may see whose runs use this version now: by its number,
    one of its aliases, or `latest` while it is the latest."""
    names = {entry.version, *entry.aliases, *(f"@{a}" for a in entry.aliases)}
    if is_latest:
        names.add("latest")
    return [
        item
        for item in _schedule_store().list(principal=_schedule_owner(principal))
        # An evaluation schedule (no predict spec) runs no model.
        if item.predict is not None
        and item.predict.get("model_name") == entry.model_name
        and str(item.predict.get("model_version") or "latest") in names
    ]
