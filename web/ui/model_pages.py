"""Registered models: versions with their metadata, aliases, and moving an alias."""

from __future__ import annotations

import re
from itertools import groupby
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from mlsys.registry import LOADABLE, RegistryEntry
from web.policy import Access, policy
from web.principal import Scope, current_principal
from web.ui import data, present

bp = Blueprint("models", __name__)
# The confirmation shown after a move comes back in the URL: only this exact shape is shown,
# so a crafted link cannot put other words on the page.
_MOVED = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}@[a-z][a-z0-9_-]{0,62} \u2192 v[0-9]{1,9}")


def env_arg() -> str:
    envs = data.environments()
    env = request.values.get("env") or envs[0]
    if env not in envs:
        abort(400, description=f"Unknown environment {env!r}: use one of {', '.join(envs)}.")
    return env


def _version(entry: RegistryEntry) -> dict[str, Any]:
    metadata = entry.metadata or {}
    metrics = metadata.get("metrics")
    return {
        "version": entry.version,
        "status": entry.status,
        "loadable": entry.status in LOADABLE,  # what predictions and aliases may name
        "aliases": entry.aliases,
        "features": entry.features,
        "metrics": metrics if isinstance(metrics, dict) else {},
        "problems": metadata.get("problems") or [],
        "size": present.size(entry.file_size_bytes),
        "sha256": entry.sha256,
        "uri": f"{entry.gcs_bucket}/{entry.blob_path}",
        "uploader": entry.uploader or "-",
        "uploaded": entry.upload_timestamp.isoformat() if entry.upload_timestamp else "",
        "target": metadata.get("target"),
    }


def _models(env: str) -> list[dict[str, Any]]:
    models = []
    for name, entries in groupby(data.registry(env), key=lambda e: e.model_name):
        versions = [_version(e) for e in entries]
        aliases = sorted((a, v["version"]) for v in versions for a in v["aliases"])
        models.append({"name": name, "versions": versions[::-1], "aliases": aliases})
    return models


@bp.get("/models")
@policy(Access.SIGNED_IN)
def index() -> str:
    """Every model of an environment, newest version first."""
    env = env_arg()
    moved = request.args.get("moved")
    return render_template(
        "ui/models.html",
        active="models",
        env=env,
        envs=data.environments(),
        models=_models(env),
        can_move=current_principal().has(Scope.REGISTRY),
        moved=moved if moved and _MOVED.fullmatch(moved) else None,
    )


@bp.post("/models/<name>/aliases")
@policy(Scope.REGISTRY, budget=True)
def move_alias(name: str) -> Response:
    """Point an alias at a version (as PUT /models/{name}/aliases/{alias}), then back."""
    env = env_arg()
    alias = request.form.get("alias", "").strip()
    version = request.form.get("version", "").strip()
    if not alias or not version:
        abort(400, description="Give both the alias (e.g. champion) and the version to point at.")
    entry = data.move_alias(current_principal(), env, name, alias, version)
    moved = f"{name}@{alias.lstrip('@')} \u2192 {entry.version}"
    return redirect(url_for("ui.models.index", env=env, moved=moved), code=303)


@bp.post("/models/sync")
@policy(Scope.REGISTRY, budget=True)
def sync() -> Response:
    """Queue a registry sync (a job, as POST /model-registry), then follow it on its page."""
    job_id = data.sync_registry(current_principal(), env_arg())
    return redirect(url_for("ui.jobs.detail", job_id=job_id), code=303)
