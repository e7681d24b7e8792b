"""Start work from the page: a new prediction (blank, or cloned from a job) and "Run again".

The form posts the same fields as POST /predict and goes through the same validation
(`PredictRequest`, then `web.predict.enqueue_predict`: tables, datasets, model, columns), the
same policy (scope, datasets, submit budget) and the dashboard's CSRF check; a refusal is shown
above the form with the API's own words, the entered values kept.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from pydantic import ValidationError

from mlsys.dispositions import WRITE_DISPOSITIONS
from mlsys.errors import InvalidRequest, MlsysError
from web.errors import validation_problem
from web.policy import Datasets, Owner, policy
from web.principal import Scope, current_principal
from web.schemas import PredictRequest
from web.ui import data

bp = Blueprint("start", __name__)

MODES = ("full", "incremental")
#: The request fields the form has, in the order it shows them.
FIELDS = tuple(name for name in PredictRequest.model_fields if name != "idempotency_key")
_LISTS = ("id_columns", "key_columns")


def dispositions() -> list[str]:
    """What the principal may ask for: WRITE_TRUNCATE only with the truncate scope."""
    allowed = current_principal().has(Scope.TRUNCATE)
    return [d for d in WRITE_DISPOSITIONS if d != "WRITE_TRUNCATE" or allowed]


def as_form(params: dict[str, Any]) -> dict[str, str]:
    """A job's parameters as the form's text fields."""
    out = {}
    for name in FIELDS:
        value = params.get(name)
        if value is None:
            continue
        out[name] = ", ".join(value) if isinstance(value, list) else str(value)
    return out


def from_form() -> tuple[dict[str, str], dict[str, Any]]:
    """The form's values as typed (to show again) and as the JSON body POST /predict takes."""
    typed = {name: request.form.get(name, "").strip() for name in FIELDS}
    body: dict[str, Any] = {}
    for name, text in typed.items():
        if not text:
            continue  # left empty: the API's default
        if name in _LISTS:
            body[name] = [part.strip() for part in text.split(",") if part.strip()]
        elif name == "shards":
            body[name] = int(text) if text.isdigit() else text  # the schema says what is wrong
        else:
            body[name] = text
    return typed, body


def problem_of(error: Exception) -> dict[str, Any]:
    """The 4xx problem POST /predict would answer, as the page shows it."""
    if isinstance(error, ValidationError):
        answer = validation_problem(error).get_json()
        # A schedule's prediction fields are under "predict.": the form shows them unprefixed.
        fields = {e["field"].removeprefix("predict."): e["message"] for e in answer["errors"]}
        return {"status": 400, "title": answer["title"], "detail": answer["detail"],
                "hint": None, "fields": fields}  # fmt: skip
    assert isinstance(error, MlsysError)
    return {"status": error.status, "title": error.title, "detail": error.message,
            "hint": error.hint, "fields": {}}  # fmt: skip


def _page(values: dict[str, str], problem: dict[str, Any] | None = None, source: str | None = None):
    env = values.get("env") or data.environments()[0]
    try:
        models = data.model_choices(env)
    except MlsysError:
        models = {}
    return render_template(
        "ui/predict.html",
        active="predict",
        values=values,
        problem=problem,
        source=source,
        envs=data.environments(),
        models=models,
        dispositions=dispositions(),
        modes=MODES,
    )


@bp.get("/predict")
@policy(Scope.PREDICT)
def form() -> str:
    """The new-prediction form; `?from=<job id>` fills it with that job's parameters."""
    source = request.args.get("from") or None
    values: dict[str, str] = {}
    if source:
        job = data.get_job(current_principal(), source)
        values = as_form(job.get("params") or {})
    return _page(values, source=source)


@bp.post("/predict")
@policy(Scope.PREDICT, datasets=Datasets.REQUEST, budget=True)
def submit() -> Response | tuple[str, int]:
    """Validate as POST /predict does, queue the job and follow it on its page; or show why
    not above the form."""
    typed, body = from_form()
    try:
        job_id = data.submit_prediction(PredictRequest.model_validate(body))
    except (ValidationError, MlsysError) as error:
        problem = problem_of(error)
        return _page(typed, problem), problem["status"]
    return redirect(url_for("ui.jobs.detail", job_id=job_id, started=1), code=303)


@bp.post("/jobs/<job_id>/again")
@policy(Scope.PREDICT, datasets=Datasets.REQUEST, owner=Owner.OWN, budget=True)
def run_again(job_id: str) -> Response:
    """Submit a prediction job's request again (the model reference resolved anew: an alias
    that moved runs its new version), then follow the new job."""
    job = data.get_job(current_principal(), job_id)
    if job["kind"] != "predict":
        raise InvalidRequest(
            "Only prediction jobs can be run again here.",
            hint="Start a registry sync from the models page, or an evaluation with "
            "POST /evaluations or `mlsys submit evaluate`.",
        )
    params = {k: v for k, v in (job.get("params") or {}).items() if k in FIELDS and v is not None}
    new_id = data.submit_prediction(PredictRequest.model_validate(params))
    return redirect(url_for("ui.jobs.detail", job_id=new_id, started=1), code=303)
