"""The `mlsys` command: run jobs in-process on any backend, or drive the API."""

from __future__ import annotations

import json
import sys
import tempfile
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click

from mlsys.cli.evaluate import evaluate, submit_evaluate
from mlsys.cli.remote import jobs, submit
from mlsys.cli.schedules import schedule
from mlsys.dispositions import WRITE_DISPOSITIONS
from mlsys.errors import MlsysError

#: Where a command that runs a job notes its id (click shares `meta` with every context).
JOB_META = "mlsys.job_id"


def _opt(name: str, **kwargs):
    """An option spelled both --input-table and the seed's --input_table."""
    spellings = dict.fromkeys(["--" + name.replace("_", "-"), "--" + name])
    return click.option(*spellings, name, **kwargs)


#: Exit codes (README "The CLI"): 1 the job failed or was cancelled, or the command broke in
#: this process (the message names a log); 2 bad input (usage, or the API answered 4xx);
#: 3 the service failed (the API answered 5xx) or could not be reached: retry later.
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_SERVICE = 1, 2, 3


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _usage(error: click.UsageError) -> NoReturn:
    """A usage error as one line naming the command's --help, not click's usage block."""
    if isinstance(error, click.exceptions.NoArgsIsHelpError):
        raise error  # a bare group: its help is what the user asked for
    where = f" (see {error.ctx.command_path} --help)" if error.ctx else ""
    _fail(f"{error.format_message()}{where}")


class _Group(click.Group):
    """Turns mlsys errors and usage errors anywhere below into one line and exit 2, never a
    traceback or a usage block."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as error:
            _usage(error)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MlsysError as error:
            if error.status >= 500 and _from_api(error):
                _fail(str(error), EXIT_SERVICE)  # not the caller's input: the server's log says
            if error.status >= 500:
                _crash(ctx, error)  # the model or a backend broke: keep the traceback
            _fail(str(error))
        except click.UsageError as error:
            _usage(error)
        except KeyboardInterrupt:
            _fail("interrupted")
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except Exception as error:  # never a traceback on the terminal: one line + a log
            _crash(ctx, error)


def _from_api(error: MlsysError) -> bool:
    """The API answered with a problem: its message is the whole story (no traceback of ours)."""
    from mlsys.client import ApiError

    return isinstance(error, ApiError)


def _crash(ctx: click.Context, error: Exception) -> NoReturn:
    """One line naming what failed, the job and where the full traceback was written; exit 1."""
    job_id = ctx.meta.get(JOB_META)
    command = " ".join(filter(None, [ctx.command_path, ctx.invoked_subcommand]))
    log = _write_log(job_id, error)
    message = " ".join(str(error).split()) or "(no message)"
    if len(message) > 300:
        message = message[:297] + "..."
    job = f" (job {job_id})" if job_id else ""
    click.echo(
        f"error: {command} failed{job}: {type(error).__name__}: {message} Full log: {log}",
        err=True,
    )
    sys.exit(EXIT_FAILED)


def _write_log(job_id: str | None, error: BaseException) -> str:
    name = f"{job_id or 'mlsys'}-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    text = "".join(traceback.format_exception(error))
    for folder in (_settings().home / "logs", Path(tempfile.gettempdir()) / "mlsys-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
            return str(folder / name)
        except OSError:
            continue
    return "(could not be written)"


def _backends():
    from mlsys.store import open_store
    from mlsys.warehouse import open_warehouse

    settings = _settings()
    return settings, open_warehouse(settings=settings), open_store(settings=settings)


def _bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="rows", unit_scale=True, dynamic_ncols=True)


@click.group(cls=_Group)
@click.version_option(package_name="mlsys")
def main() -> None:
    """Batch predictions for scikit-learn models over warehouse tables.

    Exit codes: 0 done; 1 the job failed or was cancelled (or the command broke: the message
    names a log); 2 bad input (usage, or the API answered 4xx); 3 the service failed (the API
    answered 5xx) or could not be reached.
    """


@main.command()
@click.option("--rows", default=1_000_000, show_default=True, help="Passengers to generate.")
@_opt("env", default="dev", show_default=True, help="Environment (bucket and registry).")
def demo(rows: int, env: str) -> None:
    """Run the main job on the configured backends (embedded by default)."""
    from mlsys.cli.demo import run_demo

    settings, warehouse, store = _backends()
    click.echo(f"mlsys demo: warehouse {warehouse!r}, model store {store!r}")
    report = run_demo(
        warehouse, store, settings, rows, env, progress_factory=lambda n: _bar(n, "predict")
    )
    r = report.result
    rate = r.rows_written / max(r.seconds, 1e-9)
    out = r.output_table
    click.echo(
        f"5/5 Done: {r.rows_written:,} predictions by {r.model} in {r.seconds:.1f}s "
        f"({rate:,.0f} rows/s); whole demo {report.seconds_total:.1f}s.\n"
        f"   Output: {out} (job {r.job_id})\n"
        f"   Look at it:  uv run mlsys query 'SELECT Survived, COUNT(*) AS n, "
        f"AVG(PredictionProbability) AS p FROM `{out}` GROUP BY Survived'\n"
        f"   In Python:   from mlsys.bq import bq_get\n"
        f'                bq_get("SELECT * FROM `{out}` LIMIT 10")'
    )
    from mlsys.monitoring.stats import summary_lines

    for line in summary_lines(r.monitoring):
        click.echo(f"   {line}")


@main.command()
@click.argument("sql")
@click.option("--limit", default=50, show_default=True, help="Rows to print.")
def query(sql: str, limit: int) -> None:
    """Run BigQuery SQL on the configured warehouse and print the result."""
    _settings, warehouse, _store = _backends()
    frame = warehouse.query(sql)
    click.echo(frame.head(limit).to_string(index=False))
    if len(frame) > limit:
        click.echo(f"... {len(frame) - limit} more rows")


def _predict_options(fn):
    for option in reversed(
        [
            _opt("env", required=True, help="Environment: dev, staging or prod."),
            _opt("input_table", required=True, help="project.dataset.table to read."),
            _opt("output_table", required=True, help="project.dataset.table to append to."),
            _opt("model_name", required=True, help="Registered model, e.g. titanic-survival."),
            _opt(
                "model_version", default="latest", show_default=True, help="vN, latest or an alias."
            ),
            _opt(
                "id_columns",
                default=None,
                help="Comma-separated id columns (default: metadata, else non-feature columns).",
            ),
            _opt(
                "write_disposition",
                default="WRITE_APPEND",
                show_default=True,
                type=click.Choice(WRITE_DISPOSITIONS),
            ),
            _opt("shards", type=int, default=None, help="Parts to split the input into."),
            _opt(
                "mode",
                default="full",
                show_default=True,
                type=click.Choice(["full", "incremental"]),
                help="incremental: only rows whose keys this model version has not predicted.",
            ),
            _opt("key_columns", default=None, help="incremental: comma-separated key columns."),
        ]
    ):
        fn = option(fn)
    return fn


@main.command()
@_predict_options
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Local processes to run shards in (default: MLSYS_PREDICT_WORKERS, else every CPU "
    "this process may use).",
)
def predict(workers: int | None, **params) -> None:
    """Run a predict job on this machine, on all its cores (no service needed)."""
    from mlsys.predict import PredictSpec, predict_table
    from mlsys.resources import available_cpus

    settings, warehouse, store = _backends()
    workers = workers or settings.predict_workers or available_cpus()
    spec = PredictSpec.parse(settings=settings, **params)
    job_id = f"cli-{uuid.uuid4().hex[:16]}"
    click.get_current_context().meta[JOB_META] = job_id
    bar = None

    def on_prepared(prepared):
        nonlocal bar
        bar = _bar(prepared.rows_total, f"predict {prepared.model.ref}")

    try:
        result = predict_table(
            spec,
            warehouse,
            store,
            settings,
            job_id,
            progress=lambda n: bar.update(n) if bar else None,
            on_prepared=on_prepared,
            workers=workers,
        )
    finally:
        if bar is not None:
            bar.close()
    click.echo(json.dumps(result.to_json(), indent=2))
    from mlsys.monitoring.stats import summary_lines

    for line in summary_lines(result.monitoring):
        click.echo(line, err=True)  # stdout stays one JSON document


@main.group()
def registry() -> None:
    """Scan, list and alias registered models."""


@registry.command("sync")
@_opt("env", required=True, help="Environment whose bucket to scan.")
def registry_sync(env: str) -> None:
    """Scan the model bucket and merge it into the registry table."""
    from mlsys.registry import sync_registry

    settings, warehouse, store = _backends()
    click.echo(json.dumps(sync_registry(warehouse, store, settings, env).to_json(), indent=2))


@registry.command("list")
@_opt("env", required=True, help="Environment.")
@_opt("model_name", default=None, help="Only this model.")
def registry_list(env: str, model_name: str | None) -> None:
    """List registered model versions."""
    from mlsys.registry import read_registry

    settings, warehouse, _store = _backends()
    settings.check_env(env)
    entries = [
        e
        for e in read_registry(warehouse, settings, env)
        if model_name is None or e.model_name == model_name
    ]
    if not entries:
        click.echo(
            f"No models registered in {env}. Save one and run: mlsys registry sync --env {env}"
        )
    for e in entries:
        aliases = " ".join(f"@{a}" for a in e.aliases)
        click.echo(f"{e.model_name:<32} {e.version:<6} {e.status:<8} {e.sha256[:12]} {aliases}")


@registry.command("alias")
@_opt("env", required=True, help="Environment.")
@click.argument("model_name")
@click.argument("alias")
@click.argument("version")
def registry_alias(env: str, model_name: str, alias: str, version: str) -> None:
    """Point ALIAS (e.g. champion) at VERSION (e.g. v3) of MODEL_NAME."""
    from mlsys.registry import set_alias

    settings, warehouse, _store = _backends()
    entry = set_alias(warehouse, settings, env, model_name, alias, version)
    click.echo(f"{model_name}@{alias} -> {entry.version}")


@main.group()
def token() -> None:
    """Make API tokens for MLSYS_API_PRINCIPALS (which stores only their hashes)."""


@token.command("new")
@click.option("--name", required=True, help="The principal's name, e.g. analytics.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    default=["predict"],
    show_default=True,
    type=click.Choice(["predict", "truncate", "registry", "admin"]),
    help="Repeat for several.",
)
def token_new(name: str, scopes: tuple[str, ...]) -> None:
    """Print a new random token and the MLSYS_API_PRINCIPALS entry holding its SHA-256."""
    import hashlib
    import secrets

    value = secrets.token_urlsafe(32)
    entry = {
        "name": name,
        "token_sha256": [hashlib.sha256(value.encode()).hexdigest()],
        "scopes": list(dict.fromkeys(scopes)),
    }
    click.echo(f"token: {value}")
    click.echo("(give the token to its holder; only the entry below goes into the config)")
    click.echo(json.dumps(entry))


# The commands that drive the API live in their own modules; they join the group here.
main.add_command(submit)
main.add_command(jobs)
main.add_command(schedule)
main.add_command(evaluate)
submit.add_command(submit_evaluate)


def _settings():
    # Imported when a command runs: `--help` and argument errors never load pydantic.
    from mlsys.settings import get_settings

    return get_settings()
