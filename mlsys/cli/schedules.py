"""`mlsys schedule ...`: schedules on the mlsys service (MLSYS_API_URL)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # the HTTP client loads when a command calls the API, not for --help
    from mlsys.client import MlsysClient


def _client() -> MlsysClient:
    from mlsys.client import MlsysClient

    return MlsysClient.from_settings(_settings())


def _opt(name: str, **kwargs):
    spellings = dict.fromkeys(["--" + name.replace("_", "-"), "--" + name])
    return click.option(*spellings, name, **kwargs)


def _columns(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def _line(item: dict) -> str:
    when = item["cron"] and f"cron '{item['cron']}' {item['timezone']}"
    when = when or f"every {item['interval_seconds']:g}s"
    spec = item["predict"]
    state = "paused" if item["paused"] else f"next {item.get('next_run_at') or '-'}"
    return (
        f"{item['schedule_id']}  {when:<32} {spec['model_name']}@{spec['model_version']} "
        f"-> {spec['output_table']}  {state}"
    )


@click.group()
def schedule() -> None:
    """Run predict jobs on a cron expression or at an interval, on the mlsys service."""


@schedule.command("create")
@click.option("--cron", default=None, help='Five fields, e.g. "0 6 * * mon-fri".')
@click.option("--every", "interval_seconds", type=float, default=None, help="Seconds between runs.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone of the cron.")
@click.option("--name", default=None, help="A label.")
@click.option("--paused", is_flag=True, help="Create it paused.")
@_opt("env", required=True)
@_opt("input_table", required=True)
@_opt("output_table", required=True)
@_opt("model_name", required=True)
@_opt("model_version", default="latest", show_default=True, help="vN, latest or an alias.")
@_opt("id_columns", default=None, help="Comma-separated.")
@_opt("mode", type=click.Choice(["full", "incremental"]), default="full", show_default=True)
@_opt("key_columns", default=None, help="incremental: comma-separated key columns.")
@_opt("write_disposition", default="WRITE_APPEND", show_default=True)
def schedule_create(cron, interval_seconds, timezone, name, paused, **predict) -> None:
    """Create a schedule; prints it as JSON."""
    predict["id_columns"] = _columns(predict["id_columns"])
    predict["key_columns"] = _columns(predict["key_columns"])
    item = _client().create_schedule(
        {k: v for k, v in predict.items() if v is not None},
        cron=cron,
        interval_seconds=interval_seconds,
        timezone=timezone,
        name=name,
        paused=paused,
    )
    click.echo(json.dumps(item, indent=2))


@schedule.command("list")
def schedule_list() -> None:
    """One line per schedule: id, timing, model, output, next run."""
    items = _client().schedules()
    if not items:
        click.echo("no schedules")
    for item in items:
        click.echo(_line(item))


@schedule.command("show")
@click.argument("schedule_id")
def schedule_show(schedule_id: str) -> None:
    """A schedule and its latest runs, as JSON."""
    click.echo(json.dumps(_client().schedule(schedule_id), indent=2))


@schedule.command("pause")
@click.argument("schedule_id")
def schedule_pause(schedule_id: str) -> None:
    """Stop runs until resumed."""
    click.echo(_line(_client().pause_schedule(schedule_id)))


@schedule.command("resume")
@click.argument("schedule_id")
def schedule_resume(schedule_id: str) -> None:
    """Run again from the next tick (missed ticks are not replayed)."""
    click.echo(_line(_client().resume_schedule(schedule_id)))


@schedule.command("update")
@click.argument("schedule_id")
@click.option("--cron", default=None)
@click.option("--every", "interval_seconds", type=float, default=None)
@click.option("--timezone", default=None)
@click.option("--name", default=None)
def schedule_update(schedule_id: str, **changes) -> None:
    """Change when a schedule runs (a cron replaces an interval and the other way round)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise click.UsageError("Give at least one of --cron, --every, --timezone, --name.")
    click.echo(_line(_client().update_schedule(schedule_id, **changes)))


@schedule.command("delete")
@click.argument("schedule_id")
def schedule_delete(schedule_id: str) -> None:
    """Delete a schedule; jobs it already submitted carry on."""
    _client().delete_schedule(schedule_id)
    click.echo(f"deleted {schedule_id}")


def _settings():
    # Imported when a command runs: `--help` and argument errors never load pydantic.
    from mlsys.settings import get_settings

    return get_settings()
