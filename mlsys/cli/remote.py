"""`mlsys submit ...` and `mlsys jobs ...`: the CLI side of the HTTP API (MLSYS_API_URL)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # the HTTP client loads when a command calls the API, not for --help
    from mlsys.client import MlsysClient

#: `--wait` first lets the server hold the answer this long (Prefer: wait), then polls with a
#: progress bar: a short job costs one request, a long one still shows its progress.
PREFER_WAIT = 10


def _client() -> MlsysClient:
    from mlsys.client import MlsysClient

    return MlsysClient.from_settings(_settings())


def _opt(name: str, **kwargs):
    spellings = dict.fromkeys(["--" + name.replace("_", "-"), "--" + name])
    return click.option(*spellings, name, **kwargs)


@click.group()
def submit() -> None:
    """Enqueue jobs on the mlsys service."""


@submit.command("predict")
@_opt("env", required=True)
@_opt("input_table", required=True)
@_opt("output_table", required=True)
@_opt("model_name", required=True)
@_opt("model_version", default="latest", show_default=True)
@_opt("id_columns", default=None, help="Comma-separated.")
@_opt("write_disposition", default="WRITE_APPEND", show_default=True)
@_opt("shards", type=int, default=None)
@_opt("mode", type=click.Choice(["full", "incremental"]), default=None)
@_opt("key_columns", default=None, help="incremental: comma-separated key columns.")
@_opt("idempotency_key", default=None, help="Submitting twice with one key runs one job.")
@click.option(
    "--wait",
    is_flag=True,
    help="Return when the job ends: the server waits up to 10 s, then a progress bar polls.",
)
def submit_predict(wait: bool, **params) -> None:
    """Submit a predict job; prints the job id."""
    if params.get("id_columns"):
        params["id_columns"] = [c.strip() for c in params["id_columns"].split(",")]
    if params.get("key_columns"):
        params["key_columns"] = [c.strip() for c in params["key_columns"].split(",")]
    params = {k: v for k, v in params.items() if v is not None}
    _after_submit(_client().submit_predict(wait=PREFER_WAIT if wait else None, **params), wait)


@submit.command("registry")
@_opt("env", required=True)
@click.option("--wait", is_flag=True)
def submit_registry(env: str, wait: bool) -> None:
    """Submit a registry sync job."""
    _after_submit(_client().submit_registry_sync(env, wait=PREFER_WAIT if wait else None), wait)


def _after_submit(job: dict, wait: bool) -> None:
    from mlsys.client import TERMINAL_STATES

    click.echo(job["job_id"])
    if wait and job.get("state") in TERMINAL_STATES:  # the server waited it out (Prefer)
        _report(job)
    elif wait:
        _follow(job["job_id"])


def _follow(job_id: str) -> None:
    from tqdm import tqdm

    bar = tqdm(desc=job_id[:12], unit="rows", unit_scale=True, dynamic_ncols=True)

    def update(job: dict) -> None:
        progress = job.get("progress") or {}
        if progress.get("rows_total") and bar.total != progress["rows_total"]:
            bar.total = progress["rows_total"]
            bar.refresh()
        bar.n = progress.get("rows_done") or 0
        bar.set_postfix_str(job["state"], refresh=True)

    job = _client().wait(job_id, on_update=update)
    bar.close()
    _report(job)


def _report(job: dict) -> None:
    click.echo(
        json.dumps({k: job.get(k) for k in ("job_id", "state", "result", "error")}, indent=2)
    )
    from mlsys.jobs.names import JobState
    from mlsys.monitoring.stats import summary_lines

    for line in summary_lines((job.get("result") or {}).get("monitoring")):
        click.echo(line, err=True)  # stdout stays one JSON document
    if job["state"] != JobState.SUCCEEDED:
        raise SystemExit(1)


@click.group()
def jobs() -> None:
    """Look at and cancel jobs on the mlsys service."""


@jobs.command("status")
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Show a progress bar until the job ends.")
def jobs_status(job_id: str, wait: bool) -> None:
    """Show a job (state, progress, result, error)."""
    if wait:
        _follow(job_id)
    else:
        click.echo(json.dumps(_client().job(job_id), indent=2))


@jobs.command("list")
@click.option("--state", default=None, help="queued, running, succeeded, failed or cancelled.")
@click.option("--kind", default=None, help="predict, registry_sync, alias_move or evaluate.")
@click.option("--limit", default=20, show_default=True)
@_opt("page_token", default=None, help="Where the previous page ended (it prints it).")
def jobs_list(state: str | None, kind: str | None, limit: int, page_token: str | None) -> None:
    """List your recent jobs (everyone's with an admin token), newest first."""
    page = _client().jobs(state=state, kind=kind, limit=limit, page_token=page_token)
    if not page["jobs"]:
        asked = " ".join(filter(None, [state, kind]))
        click.echo(
            f"no {asked + ' ' if asked else ''}jobs" + (" on this page" if page_token else "")
        )
    for job in page["jobs"]:
        click.echo(
            f"{job['job_id']}  {job['kind']:<13} {job['state']:<9} "
            f"{_percent(job):>6}  {job.get('submitted_at', '')}"
        )
    if page.get("next_page_token"):
        click.echo(f"more: --page-token {page['next_page_token']}", err=True)


def _percent(job: dict) -> str:
    """A predict job's share of rows done; jobs that count no rows (a registry sync, an alias
    move) show a dash, not a 0% they never leave."""
    progress = job.get("progress") or {}
    if not progress.get("rows_total"):
        return "-"
    return f"{progress.get('percent', 0):.1f}%"


@jobs.command("cancel")
@click.argument("job_id")
def jobs_cancel(job_id: str) -> None:
    """Cancel a queued or running job; its output table stays as it was."""
    click.echo(json.dumps(_client().cancel(job_id), indent=2))


def _settings():
    # Imported when a command runs: `--help` and argument errors never load pydantic.
    from mlsys.settings import get_settings

    return get_settings()
