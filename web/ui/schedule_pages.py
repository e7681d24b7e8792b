"""Schedules: recurring predictions, their next and last runs, pause and resume."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from web.policy import Access, Owner, policy
from web.principal import Scope, current_principal
from web.ui import data, present

bp = Blueprint("schedules", __name__)


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


_DONE = {"paused": "Paused: it runs no more until resumed.", "resumed": "Resumed."}


@bp.post("/schedules/<schedule_id>/<action>")
@policy(Scope.PREDICT, owner=Owner.OWN, budget=True)
def change(schedule_id: str, action: str) -> Response:
    """Pause or resume, then back to the list."""
    if action not in ("pause", "resume"):
        abort(404, description="A schedule can be paused or resumed here.")
    data.set_paused(current_principal(), schedule_id, paused=action == "pause")
    done = "paused" if action == "pause" else "resumed"
    return redirect(url_for("ui.schedules.index", changed=done), code=303)
