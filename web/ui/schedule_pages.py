"""Schedules: recurring predictions, once the schedule store exists on this deployment."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("schedules", __name__)


@bp.get("/schedules")
def index() -> str:
    """The schedules the principal may see, with their next and last runs."""
    return render_template("ui/schedules.html", active="schedules", schedules=[])
