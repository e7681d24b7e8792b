"""The jobs list and the job detail page, each with a JSON feed its script polls."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, url_for

from mlsys.jobs import JobKind, JobState
from mlsys.monitoring import PREDICTION
from web.policy import Access, Owner, policy
from web.principal import Scope, current_principal
from web.ui import data, guard, present

bp = Blueprint("jobs", __name__)

STATES = tuple(JobState)
KINDS = tuple(JobKind)
LIMITS = (50, 100, 200, 500)
PRINCIPAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")
JOB_ID_PREFIX = re.compile(r"[0-9a-f]{1,32}")


def _day(name: str) -> date | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(400, description=f"{name.title()}: a day as YYYY-MM-DD, not {text!r}.")
        raise AssertionError from None  # unreachable: abort raises


def _filters() -> data.JobFilter:
    """The page's filters from the query string; a value the form cannot produce is a 400."""
    state = request.args.get("state") or None
    kind = request.args.get("kind") or None
    limit = request.args.get("limit") or str(data.PAGE_SIZE)
    if state is not None and state not in STATES:
        abort(400, description=f"Unknown state {state!r}: use one of {', '.join(STATES)}.")
    if kind is not None and kind not in KINDS:
        abort(400, description=f"Unknown kind {kind!r}: use one of {', '.join(KINDS)}.")
    if not limit.isdigit() or int(limit) not in LIMITS:
        abort(400, description=f"Show 50, 100, 200 or 500 jobs, not {limit!r}.")
    principal = request.args.get("principal", "").strip() or None
    if principal is not None and not PRINCIPAL_NAME.fullmatch(principal):
        abort(400, description="A principal's name: letters, digits, '_', '.', '@' and '-'.")
    model = request.args.get("model", "").strip() or None
    if model is not None and not MODEL_NAME.fullmatch(model):
        abort(400, description="A model's name: lowercase letters, digits, '_' and '-'.")
    since, until = _day("from"), _day("to")
    if since and until and until < since:
        abort(400, description="The 'to' day comes before the 'from' day: swap them.")
    return data.JobFilter(
        state=state,
        kind=kind,
        limit=int(limit),
        principal=principal,
        page_token=request.args.get("page_token") or None,
        model=model,
        # Days in UTC, both included: from its midnight to the midnight after `to`.
        since=datetime.combine(since, time(), UTC) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
    )


def _query(wanted: data.JobFilter, **changes: Any) -> dict[str, Any]:
    query: dict[str, Any] = {
        "state": wanted.state,
        "kind": wanted.kind,
        "principal": wanted.principal,
        "model": wanted.model,
        "from": wanted.from_day or None,
        "to": wanted.to_day or None,
        "page_token": wanted.page_token,
    }
    if wanted.limit != data.PAGE_SIZE:
        query["limit"] = wanted.limit
    query.update(changes)
    return {k: v for k, v in query.items() if v is not None}


def _rows(wanted: data.JobFilter) -> tuple[list[dict[str, Any]], str | None]:
    now = datetime.now(UTC)
    jobs, next_token = data.list_jobs(current_principal(), wanted)
    return [present.job_row(job, now) for job in jobs], next_token


@bp.get("/jobs")
@policy(Access.SIGNED_IN, owner=Owner.OWN)
def index() -> Response | str:
    """Every job the principal may see, newest first, updating in place; or the jobs whose id
    starts with what was searched (straight to the job when only one does)."""
    search = request.args.get("q", "").strip().lower()
    if search:
        return _search(search)
    wanted = _filters()
    query = _query(wanted)
    rows, next_token = _rows(wanted)
    return render_template(
        "ui/jobs.html",
        active="jobs",
        rows=rows,
        older=url_for("ui.jobs.index", **_query(wanted, page_token=next_token))
        if next_token
        else None,
        newest=url_for("ui.jobs.index", **_query(wanted, page_token=None))
        if wanted.page_token
        else None,
        can_see_all=current_principal().is_admin,
        wanted=wanted,
        states=STATES,
        kinds=KINDS,
        limits=LIMITS,
        back=url_for("ui.jobs.index", **query),
        live_url=url_for("ui.jobs.index_live", **query),
    )


def _search(search: str) -> Response | str:
    if not JOB_ID_PREFIX.fullmatch(search):
        abort(400, description="Search by a job's id or its first characters (0-9, a-f).")
    found = data.find_jobs(current_principal(), search)
    if len(found) == 1:
        return redirect(url_for("ui.jobs.detail", job_id=found[0]["job_id"]), code=303)
    now = datetime.now(UTC)
    return render_template(
        "ui/jobs.html",
        active="jobs",
        rows=[present.job_row(job, now) for job in found],
        search=search,
        older=None,
        newest=None,
        can_see_all=current_principal().is_admin,
        wanted=data.JobFilter(),
        states=STATES,
        kinds=KINDS,
        limits=LIMITS,
        back=url_for("ui.jobs.index", q=search),
        live_url=None,
    )


@bp.get("/jobs/live")
@policy(Access.SIGNED_IN, owner=Owner.OWN)
def index_live() -> Response:
    """The rows of the jobs table as HTML fragments, for the page's script."""
    wanted = _filters()
    back = url_for("ui.jobs.index", **_query(wanted))
    rows = []
    found, next_token = _rows(wanted)
    for row in found:
        html = render_template("ui/_job_row.html", row=row, back=back)
        rows.append({"id": row["id"], "state": row["state"], "html": html, "tag": _tag(html)})
    older = next_token and url_for("ui.jobs.index", **_query(wanted, page_token=next_token))
    empty = render_template("ui/_jobs_empty.html", wanted=wanted, older=older) if not rows else ""
    return jsonify(rows=rows, empty=empty)


def _detail(job_id: str) -> dict[str, Any]:
    job = data.get_job(current_principal(), job_id)
    now = datetime.now(UTC)
    params = job.get("params") or {}
    monitoring = job.get("monitoring") or (job.get("result") or {}).get("monitoring")
    profiles = data.output_profiles(job)
    charts = []
    for feature, title in data.OUTPUT_FEATURES.items():
        chart = present.histogram(present.profile_distribution(profiles.get(feature)))
        if chart is not None:
            axis = "Predicted value" if feature == PREDICTION else "Probability"
            charts.append({"title": title, "id": f"chart-{len(charts)}", "x_title": axis, **chart})
    return {
        "job": job,
        "row": present.job_row(job, now),
        "elapsed": present.duration(present.elapsed(job, now)),
        "shards": present.shard_rows(job, now),
        "error": present.plain_error(job.get("error")),
        "monitoring": monitoring if isinstance(monitoring, dict) else None,
        "charts": charts,
        "output": present.output_query(
            params.get("output_table"), job["job_id"], data.warehouse_kind(), job["state"]
        ),
        "number": present.number,
        "clock": present.clock,
        "back": url_for("ui.jobs.detail", job_id=job["job_id"]),
    }


@bp.get("/jobs/<job_id>")
@policy(Access.SIGNED_IN, owner=Owner.OWN)
def detail(job_id: str) -> str:
    """One job: progress, shards, parameters, error, monitoring, output."""
    context = _detail(job_id)
    return render_template(
        "ui/job.html",
        active="jobs",
        can_predict=current_principal().has(Scope.PREDICT),
        live_url=url_for("ui.jobs.detail_live", job_id=job_id),
        **context,
    )


@bp.get("/jobs/<job_id>/live")
@policy(Access.SIGNED_IN, owner=Owner.OWN)
def detail_live(job_id: str) -> Response:
    """The changing part of the job page as an HTML fragment, for the page's script."""
    context = _detail(job_id)
    html = render_template("ui/_job_live.html", **context)
    state = context["job"]["state"]
    return jsonify(state=state, live=state in present.LIVE_STATES, html=html, tag=_tag(html))


@bp.post("/jobs/<job_id>/cancel")
@policy(Access.SIGNED_IN, owner=Owner.OWN)
def cancel(job_id: str) -> Response:
    """Cancel, then back to the page the button was on."""
    data.cancel_job(current_principal(), job_id)
    return redirect(guard.safe_next(request.form.get("next")), code=303)


def _tag(html: str) -> str:
    """A short digest so the script replaces only what changed."""
    return hashlib.blake2s(html.encode("utf-8"), digest_size=8).hexdigest()
