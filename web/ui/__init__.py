"""The dashboard: server-rendered pages under /ui for people, beside the JSON API for programs.

Jinja templates and a few small scripts served from this package (no CDN, no build step). The
pages read and change state through the same job engine and registry functions as the API
(`web.ui.data`), as the same principals (`web.ui.guard`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from mlsys.errors import MlsysError
from web.auth import AUTH_OFF_WARNING, DASHBOARD_SESSION
from web.policy import PUBLIC, declare
from web.principal import current_principal
from web.ui import (
    evaluation_pages,
    guard,
    job_pages,
    model_pages,
    schedule_pages,
    session_pages,
    start_pages,
    version_pages,
)


def _context() -> dict[str, Any]:
    principal = current_principal() if "principal" in g else None
    return {
        "auth_off": not guard.auth_enabled(),
        "auth_off_warning": AUTH_OFF_WARNING,
        "principal": principal,
        "signed_in": g.get("ui_session") is not None,
        "csrf_token": guard.csrf_token,
        "csrf_field": guard.CSRF_FIELD,
    }


def _error_page(status: int, title: str, detail: str, hint: str | None = None) -> Response:
    if request.endpoint and request.endpoint.endswith("_live"):
        response = jsonify(error=title, detail=detail)
    else:
        response = Response(
            render_template("ui/error.html", status=status, title=title, detail=detail, hint=hint)
        )
    response.status_code = status
    return response


def _mlsys_error(error: MlsysError) -> Response:
    return _error_page(error.status, error.title, error.message, error.hint)


def _http_error(error: HTTPException) -> Response:
    response = _error_page(error.code or 500, error.name, error.description or error.name)
    if error.code == 405:
        response.headers.update(dict(error.get_headers()))
        response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


def create_blueprint() -> Blueprint:
    """The /ui blueprint with its pages, sign-in guard, error pages and security headers."""
    bp = Blueprint(
        "ui", __name__, url_prefix="/ui", template_folder="templates", static_folder="static"
    )
    bp.before_request(guard.authenticate)
    # The API's documentation routes accept a dashboard session too (web.auth).
    bp.record_once(
        lambda state: state.app.extensions.update({DASHBOARD_SESSION: guard.session_principal})
    )
    bp.after_request(guard.finish)
    bp.context_processor(_context)
    bp.register_error_handler(MlsysError, _mlsys_error)
    bp.register_error_handler(HTTPException, _http_error)
    for pages in (
        session_pages,
        job_pages,
        start_pages,
        model_pages,
        schedule_pages,
        evaluation_pages,
        version_pages,
    ):
        bp.register_blueprint(pages.bp)
    bp.add_url_rule("/", "home", session_pages.home)
    # Flask serves the blueprint's static files itself: their policy is declared here.
    bp.record_once(lambda state: declare(state.app, "ui.static", PUBLIC))
    return bp
