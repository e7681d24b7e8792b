"""Schedules: recurring predictions, their next and last runs; create, edit, pause, delete.

The forms go through the API's own functions (`web.schedules.create` / `change`), so they check
exactly what POST and PATCH /schedules check; a refusal is shown above the form in the API's
words. The next five runs are previewed in the schedule's zone as beat's crontab computes them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import available_timezones

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, url_for
from pydantic import ValidationError

from mlsys.errors import MlsysError
from mlsys.jobs.schedules import Schedule, check_timing
from web import schedules as api
from web.policy import Access, Datasets, Owner, policy
from web.principal import Scope, current_principal
from web.schedule_schemas import ScheduleCreate, ScheduleUpdate
from web.ui import data, present, start_pages
from worker.beat import upcoming

bp = Blueprint("schedules", __name__)
PREVIEW_RUNS = 5
ZONES = sorted(available_timezones())


@bp.get("/schedules")
@policy(Access.SIGNED_IN, owner=Owner.OWN)
def index() -> str:
    """The schedules the principal may see, with their next and last runs."""
    principal = current_principal()
    return render_template(
        "ui/schedules.html",
        active="schedules",
        schedules=data.list_schedules(principal),
        can_change=principal.has(Scope.PREDICT),
        clock=present.clock,
        changed=_DONE.get(request.args.get("changed", "")),
    )


_DONE = {
    "paused": "Paused: it runs no more until resumed.",
    "resumed": "Resumed.",
    "created": "Created: beat runs it from its next time on.",
    "saved": "Saved.",
    "deleted": "Deleted: it runs no more (jobs it started carry on).",
}


@bp.post("/schedules/<schedule_id>/<action>")
@policy(Scope.PREDICT, owner=Owner.OWN, budget=True)
def change(schedule_id: str, action: str) -> Response:
    """Pause or resume, then back to the list."""
    if action not in ("pause", "resume"):
        abort(404, description="A schedule can be paused or resumed here.")
    data.set_paused(current_principal(), schedule_id, paused=action == "pause")
    done = "paused" if action == "pause" else "resumed"
    return redirect(url_for("ui.schedules.index", changed=done), code=303)


def preview(cron: str | None, interval: str | None, zone: str) -> dict[str, Any]:
    """The next runs of a timing as people read them, or why the timing is refused."""
    try:
        seconds = float(interval) if interval else None
    except ValueError:
        return {"error": f"Every {interval!r} seconds: give a number of seconds."}
    try:
        check_timing(cron or None, seconds, zone, data.schedule_min_interval())
    except MlsysError as error:
        return {"error": f"{error.message} {error.hint or ''}".strip()}
    timing = Schedule("preview", "", {}, cron=cron or None, interval_seconds=seconds, timezone=zone)
    runs = upcoming(timing, PREVIEW_RUNS, datetime.now(UTC))
    return {
        "runs": [
            {
                "local": run.strftime("%a %Y-%m-%d %H:%M") + f" {zone}",
                "utc": run.astimezone(UTC).strftime("%H:%M UTC"),
                "iso": run.isoformat(),
            }
            for run in runs
        ]
    }


@bp.get("/schedules/preview/live")
@policy(Access.SIGNED_IN)
def preview_live() -> Response:
    """The next five runs of the timing being typed, for the form's script."""
    args = request.args
    return jsonify(
        preview(args.get("cron"), args.get("interval_seconds"), args.get("timezone") or "UTC")
    )


def _timing_values() -> dict[str, str]:
    form = request.form
    return {
        name: form.get(name, "").strip()
        for name in ("name", "cron", "interval_seconds", "timezone")
    }


def _timing_body(values: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {k: v for k, v in values.items() if v and k != "interval_seconds"}
    if values.get("interval_seconds"):
        text = values["interval_seconds"]
        try:
            body["interval_seconds"] = float(text)
        except ValueError:
            body["interval_seconds"] = text  # the schema says what is wrong
    return body


def _page(template_values: dict[str, str], item: Schedule | None, problem=None, source=None):
    values = template_values
    models = {}
    if item is None:
        try:
            models = data.model_choices(values.get("env") or data.environments()[0])
        except MlsysError:
            models = {}
    return render_template(
        "ui/schedule_form.html",
        active="schedules",
        item=item,
        values=values,
        problem=problem,
        source=source,
        preview=preview(
            values.get("cron"), values.get("interval_seconds"), values.get("timezone") or "UTC"
        ),
        zones=ZONES,
        envs=data.environments(),
        models=models,
        dispositions=start_pages.dispositions(),
        modes=start_pages.MODES,
    )


@bp.get("/schedules/new")
@policy(Scope.PREDICT)
def new() -> str:
    """A blank schedule, or (`?from=<job id>`) one that runs that job's prediction."""
    source = request.args.get("from") or None
    values = {"timezone": "UTC", "cron": "0 6 * * *"}
    if source:
        job = data.get_job(current_principal(), source)
        values |= start_pages.as_form(job.get("params") or {})
    return _page(values, None, source=source)


@bp.post("/schedules/new")
@policy(Scope.PREDICT, datasets=Datasets.REQUEST, budget=True)
def create() -> Response | tuple[str, int]:
    """Create it as POST /schedules does, or show why not."""
    typed, predict = start_pages.from_form()
    values = {**typed, **_timing_values()}
    body = {
        **_timing_body(_timing_values()),
        "predict": predict,
        "paused": bool(request.form.get("paused")),
    }
    try:
        api.create(ScheduleCreate.model_validate(body))
    except (ValidationError, MlsysError) as error:
        problem = start_pages.problem_of(error)
        return _page(values, None, problem), problem["status"]
    return redirect(url_for("ui.schedules.index", changed="created"), code=303)


def _owned(schedule_id: str) -> Schedule:
    return data.get_schedule(current_principal(), schedule_id)


@bp.get("/schedules/<schedule_id>/edit")
@policy(Scope.PREDICT, owner=Owner.OWN)
def edit(schedule_id: str) -> str:
    """When it runs and its name; its prediction is fixed (delete and create to change it)."""
    item = _owned(schedule_id)
    values = {
        "name": item.name or "",
        "cron": item.cron or "",
        "interval_seconds": f"{item.interval_seconds:g}" if item.interval_seconds else "",
        "timezone": item.timezone,
    }
    return _page(values, item)


@bp.post("/schedules/<schedule_id>/edit")
@policy(Scope.PREDICT, owner=Owner.OWN, budget=True)
def save(schedule_id: str) -> Response | tuple[str, int]:
    """Change it as PATCH /schedules/{id} does, or show why not."""
    item = _owned(schedule_id)
    values = _timing_values()
    body = _timing_body(values)
    # A cleared name is no name; the timing is one of cron or interval, the other dropped.
    body["name"] = values["name"] or None
    body.setdefault("cron", None)
    body.setdefault("interval_seconds", None)
    try:
        api.change(schedule_id, ScheduleUpdate.model_validate(body))
    except (ValidationError, MlsysError) as error:
        problem = start_pages.problem_of(error)
        return _page(values, item, problem), problem["status"]
    return redirect(url_for("ui.schedules.index", changed="saved"), code=303)


@bp.post("/schedules/<schedule_id>/delete")
@policy(Scope.PREDICT, owner=Owner.OWN)
def delete(schedule_id: str) -> Response:
    """Delete it (as DELETE /schedules/{id}), then back to the list."""
    data.delete_schedule(current_principal(), schedule_id)
    return redirect(url_for("ui.schedules.index", changed="deleted"), code=303)
