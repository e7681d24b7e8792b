"""A model version's monitoring history: per-feature drift of every job that used it."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from mlsys.ids import ModelRef, check_model_name
from mlsys.monitoring.stats import history, read_stats
from mlsys.registry import resolve
from web.backends import backends
from web.jobs import readable
from web.openapi import doc
from web.policy import Access, Owner, policy
from web.schedule_schemas import MonitoringHistory, MonitoringQuery
from web.schemas import MODEL_NAME_PATTERN, VERSION_PATTERN

bp = Blueprint("monitoring", __name__)

_EXAMPLE = {
    "env": "dev",
    "model_name": "titanic-survival",
    "model_version": "v3",
    "jobs": [
        {
            "job_id": "0f8e5c3a9b2d4e6f8a1b3c5d7e9f0a2b",
            "computed_at": "2024-06-10T06:02:11.000+00:00",
            "status": "warn",
            "features": [
                {
                    "feature": "Fare",
                    "model_name": "titanic-survival",
                    "model_version": 3,
                    "kind": "number",
                    "status": "warn",
                    "rows": 1000000,
                    "null_rate": 0.0,
                    "null_rate_reference": 0.0,
                    "null_rate_change": 0.0,
                    "psi": 0.14,
                    "unseen_rate": None,
                    "unseen_examples": [],
                    "mean": 41.2,
                    "computed_at": "2024-06-10T06:02:11.000+00:00",
                }
            ],
        }
    ],
}


@bp.get("/models/<name>/versions/<version>/monitoring")
@policy(Access.SIGNED_IN, owner=Owner.OWN_ROWS)
@doc(
    "Monitoring history of a model version",
    tag="monitoring",
    query=MonitoringQuery,
    responses={200: MonitoringHistory},
    errors=(404, 503),
    example=_EXAMPLE,
    path_params={
        "name": {"schema": {"pattern": MODEL_NAME_PATTERN}, "example": "titanic-survival"},
        "version": {"schema": {"pattern": VERSION_PATTERN}, "example": "v3"},
    },
)
def model_monitoring(name: str, version: str) -> Response:
    """Per-feature drift (PSI, null-rate change, unseen categories) of every job of the
    caller (an admin: every job) that ran `version` (vN, latest or an alias) of `name`, oldest
    first; `status` is the worst feature's.
    Features `__prediction__` and `__probability__` are the model's own output."""
    query = MonitoringQuery.model_validate(request.args.to_dict())
    found = backends()
    entry = resolve(
        found.warehouse, found.settings, query.env, ModelRef.parse(check_model_name(name), version)
    )
    rows = read_stats(found.warehouse, found.settings, query.env, name, entry.model_version)
    # Statistics of other principals' jobs are theirs: row counts, means, unseen values.
    rows = readable(rows)
    jobs = history(rows)[-query.limit :]
    return jsonify(env=query.env, model_name=name, model_version=entry.version, jobs=jobs)
