"""An evaluation from request to stored history: check, compute, judge, compare, store.

Pure of services: progress and cancel are callbacks (the job layer decides what they do).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from mlsys.errors import Cancelled, MlsysError
from mlsys.evaluation import sql
from mlsys.evaluation.checks import PreparedEvaluation, prepare_evaluation
from mlsys.evaluation.compute import StepProgress, compute_metrics
from mlsys.evaluation.metrics import GroupMetrics, version_number
from mlsys.evaluation.promise import judge, paired_comparison, promised_metrics, threshold_of
from mlsys.evaluation.spec import EvaluateSpec
from mlsys.evaluation.store import evaluation_rows, save_evaluation
from mlsys.ids import ModelRef
from mlsys.registry import resolve
from mlsys.settings import Settings
from mlsys.warehouse.base import Warehouse

#: Versions of one model beyond this many are not compared pairwise (one query per pair).
MAX_COMPARED_VERSIONS = 4


def evaluation_warehouse(settings: Settings) -> Warehouse:
    """The configured warehouse, with the embedded one capped at
    MLSYS_DUCKDB_EVALUATION_MEMORY: its joins then spill instead of growing with the tables
    (bench/evaluation.py: flat peak RSS from 1M to 10M rows)."""
    from mlsys.warehouse import open_warehouse

    capped = settings.model_copy(update={"duckdb_memory_limit": settings.duckdb_evaluation_memory})
    return open_warehouse(settings=capped)


def _metadata(
    warehouse: Warehouse, settings: Settings, env: str, name: str, version: str
) -> dict[str, Any] | None:
    """The version's registry metadata; None where the registry does not know it."""
    try:
        return resolve(warehouse, settings, env, ModelRef.parse(name, version)).metadata
    except MlsysError:
        return None


def _pairs(ordered: list[str], champion: str | None) -> list[tuple[str, str]]:
    """(champion, challenger) pairs: the version `@champion` names against each other one, or
    without it each version against the next."""
    if champion in ordered:
        return [(champion, v) for v in ordered if v != champion]
    return list(zip(ordered, ordered[1:], strict=False))


def _champion(warehouse: Warehouse, settings: Settings, env: str, name: str) -> str | None:
    """The version the registry's `@champion` alias names, if any."""
    try:
        return resolve(warehouse, settings, env, ModelRef.parse(name, "champion")).version
    except MlsysError:
        return None


def _comparisons(
    warehouse: Warehouse,
    settings: Settings,
    prepared: PreparedEvaluation,
    groups: list[GroupMetrics],
) -> list[dict[str, Any]]:
    """Versions of a model compared pairwise on the keys and days both scored."""
    versions: dict[str, set[str]] = defaultdict(set)
    for group in groups:
        versions[group.model_name].add(group.model_version)
    found = []
    for name, seen in sorted(versions.items()):
        ordered = sorted(seen, key=lambda v: (version_number(v) or -1, v))[-MAX_COMPARED_VERSIONS:]
        if len(ordered) < 2:
            continue
        join = prepared.join
        named = _champion(warehouse, settings, prepared.spec.env, name)
        for champion, challenger in _pairs(ordered, named):
            scoped = replace(join, model_name=name, model_version=None)
            query = sql.paired_counts(
                scoped, champion, challenger, regression=prepared.task == "regression"
            )
            row = warehouse.query(query).iloc[0]
            comparison = paired_comparison(
                champion,
                challenger,
                int(row["both_right"] or 0),
                int(row["champion_only"] or 0),
                int(row["challenger_only"] or 0),
                int(row["n"] or 0),
            )
            found.append({"model_name": name, **comparison})
    return found


def run_evaluation(
    spec: EvaluateSpec,
    warehouse: Warehouse,
    settings: Settings,
    job_id: str,
    progress: StepProgress | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    now: datetime | None = None,
    store: bool = True,
    principal: str | None = None,
) -> dict[str, Any]:
    """Evaluate, judge each day against the version's promise, compare versions, store the
    days in `mlsys_{env}.evaluations` (owned by `principal`, who submitted the job) and return
    the job's result.

    Raises:
        TableNotFound / SchemaMismatch / InvalidRequest: bad input (see `checks`).
        Cancelled: `cancelled()` said stop between two queries (nothing is stored).
    """
    prepared = prepare_evaluation(spec, warehouse, now)
    groups = compute_metrics(
        warehouse, prepared.join, prepared.task, progress or (lambda d, t: None), cancelled
    )
    judged: list[tuple[GroupMetrics, dict[str, Any]]] = []
    metadata: dict[tuple[str, str], dict[str, Any] | None] = {}
    for group in groups:
        key = (group.model_name, group.model_version)
        if key not in metadata:
            metadata[key] = _metadata(warehouse, settings, spec.env, *key)
        meta = metadata[key]
        judged.append(
            (group, judge(group, promised_metrics(meta), threshold_of(meta, spec.threshold)))
        )
    comparisons = _comparisons(warehouse, settings, prepared, groups)
    if cancelled():
        raise Cancelled("The evaluation was cancelled.")
    window = (prepared.join.since, prepared.join.until)
    stored = 0
    if store:
        rows = evaluation_rows(
            job_id, str(spec.output_table), str(spec.labels_table), window, judged, principal
        )
        stored = save_evaluation(warehouse, settings, spec.env, rows)
    return summarize(prepared, judged, comparisons, stored)


def summarize(
    prepared: PreparedEvaluation,
    judged: list[tuple[GroupMetrics, dict[str, Any]]],
    comparisons: list[dict[str, Any]],
    stored: int,
) -> dict[str, Any]:
    """The job's result: per version the whole window and each day, degraded days listed."""
    versions: dict[tuple[str, str], dict[str, Any]] = {}
    degraded_days = []
    for group, judgement in judged:
        entry = versions.setdefault(
            (group.model_name, group.model_version),
            {"model_name": group.model_name, "model_version": group.model_version, "days": []},
        )
        data = {**group.to_json(), **judgement}
        if group.day is None:
            entry["window"] = data
        else:
            entry["days"].append(
                {k: data[k] for k in ("day", "rows", "matched", "unmatched", "metrics", "status")}
                | {"degraded": judgement["degraded"]}
            )
            if judgement["status"] == "degraded":
                degraded_days.append(
                    {
                        "model_name": group.model_name,
                        "model_version": group.model_version,
                        "day": group.day,
                        "degraded": judgement["degraded"],
                    }
                )
    statuses = {j["status"] for _, j in judged}
    if "degraded" in statuses:
        overall = "degraded"
    else:
        overall = next((s for s in ("ok", "too_few_rows") if s in statuses), "no_promise")
    return {
        **prepared.to_json(),
        "status": overall,
        "versions": list(versions.values()),
        "degraded_days": degraded_days,
        "comparisons": comparisons,
        "rows_stored": stored,
    }
