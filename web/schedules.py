"""Schedules over HTTP: create, list, show (with the latest runs), pause/resume/change, delete.

A schedule is checked like POST /predict (tables, model reference, the principal's datasets
and scopes) when it is created; each run is checked again by the worker that submits it, the
principal's credentials included (a revoked principal's schedule is suspended, and only an
admin may resume it). Creating, changing and resuming spend the principal's submit budget;
a principal has at most MLSYS_SCHEDULES_PER_PRINCIPAL schedules, none more often than
MLSYS_SCHEDULE_MIN_INTERVAL. Schedules belong to the principal that created them; an admin
sees every one.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from mlsys.errors import InvalidRequest, PermissionDenied, ScheduleLimitReached
from mlsys.evaluation.checks import check_schemas
from mlsys.evaluation.spec import EvaluateSpec
from mlsys.jobs.schedules import (
    Schedule,
    ScheduleStore,
    check_timing,
    new_schedule_id,
)
from mlsys.predict import PredictSpec, prepare_predict
from web.auth import authorize_predict
from web.backends import backends
from web.errors import read_json_object
from web.evaluations import authorize_evaluation
from web.openapi import doc
from web.policy import Access, Datasets, Owner, policy
from web.principal import Principal, Scope, current_principal
from web.schedule_schemas import Schedule as ScheduleView
from web.schedule_schemas import ScheduleCreate, ScheduleList, ScheduleUpdate
from worker.app import QUEUE
from worker.beat import install, next_run, remove

bp = Blueprint("schedules", __name__)

_ID = {"schema": {"pattern": "^[0-9a-f]{32}$"}, "example": "3c5e7a9b1d3f5a7c9e1b3d5f7a9c1e3b"}
_EXAMPLE = {
    "schedule_id": "3c5e7a9b1d3f5a7c9e1b3d5f7a9c1e3b",
    "name": "daily scoring",
    "principal": "scoring-team",
    "cron": "0 6 * * *",
    "interval_seconds": None,
    "timezone": "Europe/Paris",
    "paused": False,
    "predict": {
        "env": "dev",
        "input_table": "mlsys-local.titanic.passengers",
        "output_table": "mlsys-local.titanic.predictions",
        "model_name": "titanic-survival",
        "model_version": "champion",
        "id_columns": None,
        "write_disposition": "WRITE_APPEND",
        "shards": None,
        "mode": "incremental",
        "key_columns": None,
    },
    "created_at": "2024-06-10T08:00:00.000+00:00",
    "updated_at": "2024-06-10T08:00:00.000+00:00",
    "next_run_at": "2024-06-11T06:00:00+02:00",
    "last_runs": [
        {
            "at": "2024-06-10T04:00:00.012+00:00",
            "outcome": "submitted",
            "job_id": "0f8e5c3a9b2d4e6f8a1b3c5d7e9f0a2b",
            "job_state": "succeeded",
            "detail": "",
        }
    ],
}


def _store() -> ScheduleStore:
    return ScheduleStore(backends().jobs.client)


def _owner() -> str | None:
    """Whose schedules the caller sees: their own, or (admin) everyone's."""
    principal = current_principal()
    return None if principal.is_admin else principal.name


def _checked_spec(predict: dict[str, Any]) -> PredictSpec:
    """The same checks as POST /predict, short of queueing a job."""
    if predict.pop("idempotency_key", None):
        raise InvalidRequest(
            "A schedule's predict spec takes no idempotency_key: every run is a new job.",
            hint="Remove idempotency_key from predict.",
        )
    found = backends()
    spec = PredictSpec.parse(settings=found.settings, **predict)
    authorize_predict(spec.input_table, spec.output_table, spec.write_disposition)
    prepare_predict(spec, found.warehouse, found.settings)
    return spec


def _checked_evaluation(evaluate: dict[str, Any]) -> EvaluateSpec:
    """The same checks as POST /evaluations, short of queueing a job. The window stays
    relative (each run evaluates the days before it)."""
    if evaluate.pop("idempotency_key", None):
        raise InvalidRequest(
            "A schedule's evaluate spec takes no idempotency_key: every run is a new job.",
            hint="Remove idempotency_key from evaluate.",
        )
    found = backends()
    spec = EvaluateSpec.parse(settings=found.settings, **evaluate)
    authorize_evaluation(spec)
    check_schemas(spec, found.warehouse)
    return spec


def _checked_job(body: ScheduleCreate) -> dict[str, Any]:
    """{"predict": spec} or {"evaluate": spec}: exactly one of them, checked."""
    if (body.predict is None) == (body.evaluate is None):
        raise InvalidRequest(
            "A schedule needs exactly one of predict and evaluate.",
            hint='E.g. "predict": {...the fields of POST /predict...}.',
        )
    if body.evaluate is not None:
        return {"predict": None, "evaluate": _checked_evaluation(dict(body.evaluate)).to_json()}
    return {"predict": _checked_spec(dict(body.predict)).to_json()}


def check_resume(item: Schedule, principal: Principal) -> dict[str, Any]:
    """The changes that resume `item`: a suspended schedule only by an admin (its owner's
    credentials no longer allowed its runs), which also clears the suspension."""
    if item.suspended is None:
        return {"paused": False}
    if not principal.is_admin:
        raise PermissionDenied(
            f"This schedule was suspended ({item.suspended}); only an admin may resume it.",
            hint="Ask an admin to restore the principal's access and resume it.",
        )
    return {"paused": False, "suspended": None}


def _check_room(principal: str, cap: int) -> None:
    if _store().count(principal) >= cap:
        raise ScheduleLimitReached(
            f"Principal {principal!r} already has {cap} schedules, the most allowed.",
            hint="Delete one it no longer needs (DELETE /schedules/{id}), or raise "
            "MLSYS_SCHEDULES_PER_PRINCIPAL on the server.",
        )


def _view(item: Schedule, runs: int = 0) -> dict[str, Any]:
    found = backends()
    data = {**item.to_json(), "next_run_at": next_run(found.celery, item), "last_runs": []}
    if runs:
        for run in _store().runs(item.schedule_id, runs):
            run["job_state"] = found.jobs.state(run["job_id"]) if run.get("job_id") else None
            data["last_runs"].append(run)
    return data


def create(body: ScheduleCreate) -> Schedule:
    """Check a new schedule as POST /schedules does (timing, the predict spec as POST /predict,
    the principal's room), store it and hand it to beat. The dashboard's form calls this too."""
    found = backends()
    check_timing(
        body.cron, body.interval_seconds, body.timezone, found.settings.schedule_min_interval
    )
    job = _checked_job(body)
    _check_room(current_principal().name, found.settings.schedules_per_principal)
    item = Schedule(
        schedule_id=new_schedule_id(),
        principal=current_principal().name,
        **job,
        cron=body.cron,
        interval_seconds=body.interval_seconds,
        timezone=body.timezone,
        name=body.name,
        paused=body.paused,
    )
    _store().create(item)
    install(found.celery, item, QUEUE)
    return item


def change(schedule_id: str, body: ScheduleUpdate) -> Schedule:
    """Apply a PATCH /schedules/{id} to the caller's schedule and hand it to beat again."""
    store, found = _store(), backends()
    item = store.require(schedule_id, _owner())
    changes = body.model_dump(exclude_unset=True)
    if changes.get("paused") is None:
        changes.pop("paused", None)
    elif changes["paused"] is False and item.paused:
        changes.update(check_resume(item, current_principal()))
    if "timezone" in changes and changes["timezone"] is None:
        changes.pop("timezone")
    if "cron" in changes or "interval_seconds" in changes:
        # One replaces the other: naming a cron drops the interval, and the other way round.
        if changes.get("cron") is not None:
            changes.setdefault("interval_seconds", None)
        elif changes.get("interval_seconds") is not None:
            changes.setdefault("cron", None)
    merged = {**item.to_json(), **changes}
    check_timing(
        merged["cron"],
        merged["interval_seconds"],
        merged["timezone"],
        found.settings.schedule_min_interval,
    )
    updated = store.update(item, **changes)
    install(found.celery, updated, QUEUE)
    return updated


@bp.post("/schedules")
@policy(Scope.PREDICT, datasets=Datasets.REQUEST, budget=True)
@doc(
    "Create a schedule",
    tag="schedules",
    body=ScheduleCreate,
    responses={201: ScheduleView},
    errors=(400, 403, 404, 409, 422, 503),
    example=_EXAMPLE,
)
def create_schedule() -> Response:
    """Checks the predict spec as POST /predict would, stores the schedule and hands it to
    beat at once (no restart). Runs are ordinary jobs of the calling principal."""
    item = create(ScheduleCreate.model_validate(read_json_object()))
    response = jsonify(_view(item))
    response.status_code = 201
    response.headers["Location"] = url_for("schedules.get_schedule", schedule_id=item.schedule_id)
    return response


@bp.get("/schedules")
@policy(Access.SIGNED_IN, owner=Owner.OWN)
@doc(
    "List schedules",
    tag="schedules",
    responses={200: ScheduleList},
    errors=(503,),
    example={"schedules": [{**_EXAMPLE, "last_runs": []}]},
)
def list_schedules() -> Response:
    """The caller's schedules (an admin's: everyone's), newest first."""
    return jsonify(schedules=[_view(s) for s in _store().list(principal=_owner())])


@bp.get("/schedules/<schedule_id>")
@policy(Access.SIGNED_IN, owner=Owner.OWN)
@doc(
    "Show a schedule and its latest runs",
    tag="schedules",
    responses={200: ScheduleView},
    errors=(404, 503),
    example=_EXAMPLE,
    path_params={"schedule_id": _ID},
)
def get_schedule(schedule_id: str) -> Response:
    """The schedule, when beat fires it next, and its last 20 runs (submitted jobs with their
    state now, and skipped or failed firings with the reason)."""
    return jsonify(_view(_store().require(schedule_id, _owner()), runs=20))


@bp.patch("/schedules/<schedule_id>")
@policy(Scope.PREDICT, owner=Owner.OWN, budget=True)
@doc(
    "Pause, resume or change a schedule",
    tag="schedules",
    body=ScheduleUpdate,
    responses={200: ScheduleView},
    errors=(400, 404, 503),
    example=_EXAMPLE,
    path_params={"schedule_id": _ID},
)
def update_schedule(schedule_id: str) -> Response:
    """`paused: true` stops runs, `false` resumes them from the next tick (missed ticks are
    not replayed); a new cron or interval replaces the old one."""
    updated = change(schedule_id, ScheduleUpdate.model_validate(read_json_object()))
    return jsonify(_view(updated, runs=20))


@bp.delete("/schedules/<schedule_id>")
@policy(Scope.PREDICT, owner=Owner.OWN)
@doc(
    "Delete a schedule",
    tag="schedules",
    responses={200: ScheduleView},
    errors=(404, 503),
    example={**_EXAMPLE, "next_run_at": None},
    path_params={"schedule_id": _ID},
)
def delete_schedule(schedule_id: str) -> Response:
    """Removes the schedule and its beat entry and answers what it was; jobs it already
    submitted carry on."""
    store = _store()
    item = store.require(schedule_id, _owner())
    remove(backends().celery, item)
    view = _view(item, runs=20)
    store.delete(item.schedule_id)
    return jsonify({**view, "next_run_at": None})
