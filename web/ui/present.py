"""Job records and registry entries as people read them: pure functions, no Flask.

Numbers get separators, times become ages and durations, rates and ETAs are derived from the
rows done since the job started, and errors are said in plain words before their detail.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from mlsys.evaluation.summary import summary_lines
from mlsys.jobs import LIVE

LIVE_STATES = tuple(sorted(LIVE))

# What an error type means for the person reading the job page; the engine's message follows.
# Every error a user can cause has its words here (a unit test walks mlsys.errors).
_ERROR_WORDS = {
    "ModelFailed": "The model raised an error on the input rows (a value it cannot handle, or "
    "a broken model).",
    "TableNotFound": "A table the job needs does not exist.",
    "TableNotEmpty": "The output table already has rows and the job asked for an empty one.",
    "TableExists": "The output table already exists and the job asked to create it.",
    "SchemaMismatch": "The input table does not fit the model (columns or types differ).",
    "ModelNotFound": "The model or version asked for is not registered.",
    "MetadataPending": "The model version has no metadata yet, so its features are unknown.",
    "ArtifactIntegrityError": "The model file failed its integrity check (hash or format).",
    "ArtifactExists": "A model file with that name and version already exists.",
    "BlobNotFound": "A file the job needs is missing from the model store.",
    "PermissionDenied": "The job was not allowed to read or write a table.",
    "ProtectedTable": "The job named one of mlsys' own tables, which jobs may not use.",
    "BackendUnavailable": "A backend (warehouse, model store or Redis) did not answer.",
    "MissingExtra": "The worker lacks a library this model needs.",
    "WorkerLost": "The worker running the job stopped (crashed or was killed) too many times.",
    "Cancelled": "The job was cancelled.",
    "InvalidRequest": "The job's parameters were refused.",
    "InvalidIdentifier": "A table, model or column name in the job is not valid.",
    "UnknownEnvironment": "The job names an environment this deployment does not have.",
    "JobNotFound": "The job's record is gone (it expired).",
    "JobConflict": "The job clashed with another change (it was already finishing).",
    "ScheduleNotFound": "The schedule that started the job no longer exists.",
    "ScheduleLimitReached": "The principal already has as many schedules as it may keep.",
    "MemoryError": "A worker ran out of memory scoring the job.",
    "TimeoutError": "A step of the job ran longer than its time limit.",
    "TimeLimitExceeded": "A step of the job ran longer than its time limit.",
    # The families of mlsys.errors, for an error known only by its family.
    "BadInput": "The job's input was refused.",
    "Forbidden": "The job was not allowed to do this.",
    "NotFound": "Something the job names does not exist.",
    "Conflict": "The job clashed with the current state of things.",
    "Unavailable": "A backend did not answer for a while.",
    "ServerFault": "The server or the model failed.",
}
_UNKNOWN_ERROR = "The job failed on an unexpected error."


def parse_time(value: str | None) -> datetime | None:
    if not value or not isinstance(value, str):  # a record's odd value reads as no time
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def clock(value: str | None) -> str:
    """An ISO timestamp as people read it, in UTC: '2026-11-30 22:37:57 UTC'."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: int | float | None) -> str:
    """12345 -> '12,345'; None -> '-'."""
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def duration(seconds: float | None) -> str:
    """A span in at most two units: '42 s', '3 min 5 s', '2 h 10 min', '3 d 4 h'."""
    if seconds is None or math.isnan(seconds):
        return "-"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "-"
    seconds = (now - since).total_seconds()
    return "just now" if seconds < 1 else f"{duration(seconds)} ago"


def size(n_bytes: int | None) -> str:
    """Bytes in the largest unit that keeps a number >= 1: '1.8 MB'."""
    if n_bytes is None:
        return "-"
    value = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def elapsed(job: dict[str, Any], now: datetime) -> float | None:
    """Seconds the job has run: from start to finish, or to now while it runs."""
    started = parse_time(job.get("started_at"))
    if started is None:
        return None
    end = parse_time(job.get("finished_at")) or now
    return max((end - started).total_seconds(), 0.0)


def rows_per_second(job: dict[str, Any], now: datetime) -> float | None:
    """Average rate since the job started (None before any row or second)."""
    seconds = elapsed(job, now)
    done = job["progress"]["rows_done"]
    if not seconds or seconds < 0.5 or not done:
        return None
    return done / seconds


def eta_seconds(job: dict[str, Any], now: datetime) -> float | None:
    """Seconds left at the average rate, for a running job that knows its total."""
    if job["state"] != "running":
        return None
    total, done = job["progress"]["rows_total"], job["progress"]["rows_done"]
    rate = rows_per_second(job, now)
    if not total or not rate:
        return None
    return max(total - done, 0) / rate


def model_label(job: dict[str, Any]) -> str:
    """'titanic-survival @ champion -> v3': what was asked for and, once known, what ran."""
    params = job.get("params") or {}
    name = params.get("model_name")
    if not name:
        return "-"
    asked = params.get("model_version") or "latest"
    label = f"{name} @ {asked}"
    ran = (job.get("result") or {}).get("model")  # "name/v3" (or {"version": "v3"})
    if isinstance(ran, str):
        ran_version = ran.rpartition("/")[2] or None
    else:
        ran_version = ran.get("version") if isinstance(ran, dict) else None
    if ran_version and ran_version != asked:
        label += f" \u2192 {ran_version}"
    return label


def job_row(job: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What one row of the jobs table shows."""
    params = job.get("params") or {}
    progress = job["progress"]
    rate = rows_per_second(job, now)
    eta = eta_seconds(job, now)
    joins, unit = "\u2192", "queries" if job["kind"] == "evaluate" else "rows"
    if job["kind"] == "predict":
        source, sink = params.get("input_table", "-"), params.get("output_table", "-")
    elif job["kind"] == "evaluate":  # predictions joined with their labels
        source, sink, joins = params.get("output_table", "-"), params.get("labels_table"), "+"
    else:
        source, sink = f"registry of {params.get('env', '-')}", None
    # A record missing a table (an old or odd one) still makes a row: one bad job must not
    # take the whole list down.
    source, sink = str(source or "-"), str(sink) if sink else None
    error = plain_error(job.get("error"))
    return {
        "id": job["job_id"],
        "short_id": job["job_id"][:8],
        "kind": job["kind"].replace("_", " "),
        "state": job["state"],
        "phase": job.get("phase") or job["state"],
        "live": job["state"] in LIVE_STATES,
        "model": model_label(job) if job["kind"] in ("predict", "evaluate") else "-",
        "source": source,
        "sink": sink,
        "joins": joins,
        # What the progress counts: rows scored, or an evaluation's metric queries.
        "unit": unit,
        "percent": progress["percent"],
        # Registry syncs and alias moves have no rows: they say what they did instead.
        "counts_rows": job["kind"] not in ("registry_sync", "alias_move"),
        "did": what_it_did(job),
        "reason": error["summary"] if error else None,
        "rows_done": number(progress["rows_done"]),
        "rows_total": number(progress["rows_total"]),
        "has_total": progress["rows_total"] is not None,
        "rate": f"{number(round(rate)) if rate >= 1 else f'{rate:.2f}'} {unit}/s" if rate else "-",
        "eta": duration(eta) if eta is not None else "-",
        "principal": job.get("principal") or "-",
        "submitted_at": job.get("submitted_at") or "",
        "age": age(parse_time(job.get("submitted_at")), now),
    }


def what_it_did(job: dict[str, Any]) -> str | None:
    """A registry job in words: 'alias champion: v1 → v2', '12 versions synced (2 new)'."""
    params, result = job.get("params") or {}, job.get("result") or {}
    if job["kind"] == "alias_move":
        alias = str(params.get("alias") or "?").lstrip("@")
        target = result.get("model_version") or params.get("version") or "?"
        if job["state"] != "succeeded":
            return f"{params.get('model_name', '?')}@{alias} → {target}"
        before = result.get("previous_version")
        if before == target:
            return f"alias {alias}: already on {target}"
        return f"alias {alias}: {before or 'none'} → {target}"
    if job["kind"] == "registry_sync" and job["state"] == "succeeded":
        scanned = result.get("scanned") or 0
        changes = [
            f"{number(result[key])} {label}"
            for key, label in (
                ("inserted", "new"),
                ("updated", "updated"),
                ("invalid", "invalid"),
                ("missing", "missing"),
            )
            if result.get(key)
        ]
        said = f"{number(scanned)} version{'s' if scanned != 1 else ''} synced"
        return f"{said} ({', '.join(changes)})" if changes else f"{said}, no changes"
    if job["kind"] == "evaluate" and job["state"] == "succeeded":
        return "; ".join(line.strip() for line in summary_lines(result)[:4]) or None
    return None


def plain_error(error: dict[str, Any] | None) -> dict[str, str] | None:
    """{'summary': plain words, 'detail': the engine's message, 'type': its class}."""
    if not error:
        return None
    kind = str(error.get("type") or "Error")
    return {
        "summary": _ERROR_WORDS.get(kind, _UNKNOWN_ERROR),
        "detail": str(error.get("message") or ""),
        "type": kind,
    }


def shard_rows(job: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Shards with their rows, attempt, worker and, when the engine records them, timings."""
    out = []
    for shard in job.get("shards") or []:
        started = parse_time(shard.get("started_at"))
        finished = parse_time(shard.get("finished_at"))
        if started and finished:
            took = duration((finished - started).total_seconds())
        elif started:
            took = f"{duration((now - started).total_seconds())} so far"
        else:
            took = "-"
        out.append(
            {
                "index": shard["index"],
                "state": shard["state"],
                "attempt": shard.get("attempt", 1),
                "worker": shard.get("worker") or "-",
                "rows_done": number(shard.get("rows_done")),
                "started": shard.get("started_at") or "",
                "finished": shard.get("finished_at") or "",
                "took": took,
            }
        )
    return out


def histogram(distribution: Any) -> dict[str, Any] | None:
    """Bars of a prediction distribution for an inline SVG chart.

    Accepts bin edges with counts ({"edges": [..n+1], "counts": [..n]}) or labelled counts
    ({"counts": {"0": 412, "1": 288}}); anything else gives None (no chart).
    """
    if not isinstance(distribution, dict):
        return None
    counts = distribution.get("counts")
    edges = distribution.get("edges")
    if isinstance(counts, dict):
        labels, values = [str(k) for k in counts], list(counts.values())
    elif isinstance(counts, list) and isinstance(edges, list) and len(edges) == len(counts) + 1:
        labels = [f"{_edge(a)}\u2013{_edge(b)}" for a, b in zip(edges, edges[1:], strict=False)]
        values = counts
    else:
        return None
    if not values or not all(isinstance(v, int | float) and v >= 0 for v in values):
        return None
    top = max(values) or 1
    width = 100.0 / len(values)
    bars = [
        {
            "label": label,
            "count": number(value),
            "x": round(i * width + width * 0.1, 3),
            "width": round(width * 0.8, 3),
            "height": round(100.0 * value / top, 3),
        }
        for i, (label, value) in enumerate(zip(labels, values, strict=True))
    ]
    # Axes people can read: rows at the top, middle and bottom of the scale, and at most six
    # bar labels along the bottom (every k-th, the last always), each under its bar's centre.
    step = max(1, math.ceil(len(bars) / 6))
    shown = [i for i in range(len(bars)) if i % step == 0 or i == len(bars) - 1]
    if len(shown) > 1 and shown[-1] - shown[-2] < step:
        shown.pop(-2)  # the last label would crowd the one before it
    return {
        "bars": bars,
        "max": number(top),
        "total": number(sum(values)),
        "y_ticks": [number(top), number(top / 2), "0"],
        # One slot per bar (the page lays them out as wide as the bars), labelled or blank.
        "x_labels": [bar["label"] if i in shown else "" for i, bar in enumerate(bars)],
    }


def profile_distribution(profile: dict[str, Any] | None, top: int = 12) -> dict[str, Any] | None:
    """A monitoring profile (mlsys.monitoring.FeatureProfile as JSON) as `histogram` input.

    Numbers: the bins between the profile's inner edges, closed by its minimum and maximum.
    Categories: the most frequent values, the rest summed as "other".
    """
    if not isinstance(profile, dict):
        return None
    if profile.get("kind") == "number":
        inner, counts = profile.get("edges"), profile.get("bins")
        low, high = profile.get("minimum"), profile.get("maximum")
        if not counts or inner is None or low is None or high is None:
            return None
        edges = [min(low, *inner) if inner else low, *inner, max(high, *inner) if inner else high]
        return {"edges": [round(e, 4) for e in edges], "counts": counts}
    pool = {**(profile.get("others") or {}), **(profile.get("tracked") or {})}
    if not pool:
        return None
    ranked = sorted(pool.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = dict(ranked[:top])
    rest = (profile.get("count") or 0) - (profile.get("nulls") or 0) - sum(shown.values())
    if rest > 0:
        shown["other"] = rest
    return {"counts": shown}


def _edge(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def output_query(
    table: str | None, job_id: str, warehouse_kind: str, state: str = "succeeded"
) -> dict[str, str] | None:
    """The SQL that shows a job's predictions, and where to run it: only once they landed
    (a failed or cancelled job wrote nothing, and its output table may not exist)."""
    if state != "succeeded" or not table or table.count(".") != 2:
        return None
    sql = f"SELECT * FROM `{table}` WHERE JobId = '{job_id}' LIMIT 100"
    # Backticks escaped: inside double quotes a shell would run them as a command.
    shell_sql = sql.replace("`", "\\`")
    out = {"sql": sql, "command": f'mlsys query "{shell_sql}"'}
    if warehouse_kind == "bigquery":
        project, dataset, name = table.split(".")
        out["console_url"] = (
            "https://console.cloud.google.com/bigquery?project="
            + quote(project, safe="")
            + "&ws="
            + quote(f"!1m5!1m4!4m3!1s{project}!2s{dataset}!3s{name}", safe="!")
        )
    return out
