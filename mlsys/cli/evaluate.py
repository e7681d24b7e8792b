"""`mlsys evaluate` (in this process, on the configured warehouse) and `mlsys submit evaluate`
(a job on the service): were the predictions right, once the labels landed?"""

from __future__ import annotations

import json
import uuid
from typing import Any

import click


def _opt(name: str, **kwargs):
    spellings = dict.fromkeys(["--" + name.replace("_", "-"), "--" + name])
    return click.option(*spellings, name, **kwargs)


_OPTIONS = [
    _opt("env", required=True),
    _opt("output_table", required=True, help="A table mlsys' predict jobs wrote."),
    _opt("labels_table", required=True, help="The outcomes, one row per key."),
    _opt("key_columns", default=None, help="Comma-separated (default: the shared columns)."),
    _opt("label_column", default=None, help="Default: the prediction column's name."),
    _opt("prediction_column", default=None, help="Default: the model's target column."),
    _opt("model_name", default=None, help="Only this model's predictions."),
    _opt("model_version", default=None, help="Only this version's (vN, latest, an alias)."),
    _opt("since", default=None, help="Start of the window of prediction times (ISO, UTC)."),
    _opt("until", default=None, help="End of the window (default: now)."),
    _opt("days", type=int, default=None, help="Window length without --since (default 30)."),
    _opt("label_delay", default=None, help="Leave out younger predictions, e.g. 3d or 12h."),
    _opt("threshold", type=float, default=None, help="Relative drop marking a day degraded."),
]


def evaluation_options(fn):
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


def _params(params: dict[str, Any]) -> dict[str, Any]:
    if params.get("key_columns"):
        params["key_columns"] = [c.strip() for c in params["key_columns"].split(",")]
    return {k: v for k, v in params.items() if v is not None}


@click.command("evaluate")
@evaluation_options
def evaluate(**params) -> None:
    """Evaluate predictions against labels on this machine; prints the result as JSON and
    stores each day in mlsys_{env}.evaluations."""
    from mlsys.evaluation.pipeline import evaluation_warehouse, run_evaluation
    from mlsys.evaluation.spec import EvaluateSpec
    from mlsys.evaluation.summary import summary_lines

    settings = _settings()
    spec = EvaluateSpec.parse(settings=settings, **_params(params))
    warehouse = evaluation_warehouse(settings)
    try:
        result = run_evaluation(spec, warehouse, settings, f"cli-{uuid.uuid4().hex[:16]}")
    finally:
        warehouse.close()
    click.echo(json.dumps(result, indent=2))
    for line in summary_lines(result):
        click.echo(line, err=True)  # stdout stays one JSON document


@click.command("evaluate")
@evaluation_options
@click.option("--wait", is_flag=True, help="Return when the job ends, with its result.")
def submit_evaluate(wait: bool, **params) -> None:
    """Submit an evaluate job; prints the job id (and, with --wait, its result)."""
    from mlsys.client import MlsysClient
    from mlsys.evaluation.summary import summary_lines

    client = MlsysClient.from_settings(_settings())
    job = client.submit_evaluation(**_params(params))
    click.echo(job["job_id"])
    if wait:
        job = client.wait(job["job_id"])
        click.echo(json.dumps({k: job.get(k) for k in ("state", "result", "error")}, indent=2))
        for line in summary_lines(job.get("result") or {}):
            click.echo(line, err=True)
        if job["state"] != "succeeded":
            raise SystemExit(1)


def _settings():
    # Imported when a command runs: `--help` and argument errors never load pydantic.
    from mlsys.settings import get_settings

    return get_settings()
