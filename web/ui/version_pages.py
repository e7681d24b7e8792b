"""A page per model version (what it is, how it was trained, how its inputs drifted, which
jobs and schedules used it) and a side-by-side comparison of two versions."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, render_template, request

from mlsys.monitoring import PREDICTION, PROBABILITY
from mlsys.registry import LOADABLE, RegistryEntry
from web.policy import Access, Owner, policy
from web.principal import current_principal
from web.ui import data, evaluation_pages, present
from web.ui.model_pages import env_arg

bp = Blueprint("versions", __name__)
log = logging.getLogger(__name__)

#: Metadata the page shows in its own places; any other key is shown as recorded.
_SHOWN = {
    "features", "target", "id_columns", "task", "classes", "metrics", "description", "format",
    "sha256", "estimator", "uploader", "created_at", "library_versions", "profile",
    "metadata_generation", "trained_in",
}  # fmt: skip
#: The model's own outputs among the monitored features, as the chart names them.
_OUTPUTS = {PREDICTION: "prediction (output)", PROBABILITY: "probability (output)"}
#: PSI at which mlsys.monitoring calls a feature warn / alert (drawn on the drift chart).
PSI_WARN, PSI_ALERT = 0.1, 0.25


def _latest_version(entries: list[RegistryEntry]) -> str | None:
    versions = [e for e in entries if e.status in LOADABLE]
    return max(versions, key=lambda e: e.model_version).version if versions else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _lineage(entry: RegistryEntry) -> dict[str, Any]:
    """What the metadata records of the training: who, when, with what, from where."""
    meta = entry.metadata or {}
    recorded = {k: v for k, v in meta.items() if k not in _SHOWN and v not in (None, "", [], {})}
    profile = _mapping(meta.get("profile"))
    profiled = [f for f in _mapping(profile.get("features")) if not str(f).startswith("__")]
    return {
        # The training data as its profile (the reference drift is measured against) saw it.
        "data": {"rows": profile.get("rows"), "features": profiled} if profile else None,
        # The notebook or script that saved it ({"notebook": "titanic.ipynb"}), when recorded.
        "source": meta.get("trained_in") if isinstance(meta.get("trained_in"), dict) else {},
        "estimator": meta.get("estimator"),
        "task": meta.get("task"),
        "created_at": meta.get("created_at"),
        "uploader": meta.get("uploader") or entry.uploader,
        "description": meta.get("description"),
        # metadata.json is written by whoever saved the model: show only what has the shape.
        "libraries": _mapping(meta.get("library_versions")),
        "recorded": recorded,  # e.g. the notebook or script and the data it was trained on
    }


def drift_chart(job: dict[str, Any] | None) -> dict[str, Any] | None:
    """PSI per feature of one job as horizontal bars (scale 0 to max(0.3, worst))."""
    if not job:
        return None
    features = [f for f in job["features"] if f.get("psi") is not None]
    if not features:
        return None
    features.sort(key=lambda f: -f["psi"])
    top = max(0.3, max(f["psi"] for f in features))
    return {
        "job_id": job["job_id"],
        "computed_at": job["computed_at"],
        "bars": [
            {
                "feature": _OUTPUTS.get(f["feature"], f["feature"]),
                "psi": round(f["psi"], 3),
                "status": f["status"],
                "width": round(100 * f["psi"] / top, 2),
            }
            for f in features
        ],
        "ticks": [
            {"value": v, "x": round(100 * v / top, 2)} for v in (0, PSI_WARN, PSI_ALERT) if v <= top
        ],
        "top": round(top, 2),
    }


def _versions(env: str, name: str) -> list[RegistryEntry]:
    """Every version of `name`: one registry read a page shares."""
    return [e for e in data.registry(env) if e.model_name == name]


def _version_view(env: str, version: str, entries: list[RegistryEntry]) -> dict[str, Any]:
    entry = data.version_entry(entries, version)
    meta = entry.metadata or {}
    drift = data.drift_history(env, entry)
    return {
        "entry": entry,
        "meta": meta,
        "metrics": meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {},
        "lineage": _lineage(entry),
        "drift": drift[::-1],  # newest first
        "chart": drift_chart(drift[-1] if drift else None),
        "size": present.size(entry.file_size_bytes),
    }


@bp.get("/models/<name>/versions/<version>")
@policy(Access.SIGNED_IN, owner=Owner.OWN_ROWS)
def detail(name: str, version: str) -> str:
    """Everything about one version, and what used it."""
    env = env_arg()
    entries = _versions(env, name)
    view = _version_view(env, version, entries)
    principal, now = current_principal(), datetime.now(UTC)
    is_latest = _latest_version(entries) == version
    jobs = data.jobs_of_version(principal, name, version)
    others = [e.version for e in entries if e.version != version]
    try:
        evaluations = evaluation_pages.version_history(env, name, version)[1]
    except Exception as error:  # the section is a nicety: the page answers without it
        log.warning("no evaluations for %s/%s: %s", name, version, type(error).__name__)
        evaluations = None
    return render_template(
        "ui/model_version.html",
        evaluations=evaluations,
        active="models",
        env=env,
        name=name,
        version=version,
        is_latest=is_latest,
        jobs=[present.job_row(job, now) for job in jobs],
        schedules=data.schedules_of_version(principal, view["entry"], is_latest),
        others=others[::-1],
        clock=present.clock,
        **view,
    )


@bp.get("/models/<name>/compare")
@policy(Access.SIGNED_IN, owner=Owner.OWN_ROWS)
def compare(name: str) -> str:
    """Two versions side by side: metrics, features, libraries, the latest drift."""
    env = env_arg()
    a, b = request.args.get("a", ""), request.args.get("b", "")
    if not a or not b:
        abort(400, description="Pick two versions to compare (a=v1&b=v2).")
    entries = _versions(env, name)
    left, right = _version_view(env, a, entries), _version_view(env, b, entries)
    metric_names = sorted({*left["metrics"], *right["metrics"]})
    metrics = []
    for metric in metric_names:
        x, y = left["metrics"].get(metric), right["metrics"].get(metric)
        numbers = isinstance(x, int | float) and isinstance(y, int | float)
        metrics.append(
            {"name": metric, "a": x, "b": y, "change": round(y - x, 4) if numbers else None}
        )
    fa, fb = left["entry"].features, right["entry"].features
    drift = {}
    for side, view in (("a", left), ("b", right)):
        latest = view["drift"][0] if view["drift"] else None
        for feature in latest["features"] if latest else []:
            drift.setdefault(feature["feature"], {})[side] = feature
    libraries = sorted({*left["lineage"]["libraries"], *right["lineage"]["libraries"]})
    return render_template(
        "ui/model_compare.html",
        active="models",
        env=env,
        name=name,
        a=left,
        b=right,
        metrics=metrics,
        features={
            "both": [f for f in fa if f in fb],
            "only_a": [f for f in fa if f not in fb],
            "only_b": [f for f in fb if f not in fa],
        },
        drift=dict(sorted(drift.items())),
        libraries=libraries,
        clock=present.clock,
    )
