"""Liveness (/health, open, touches nothing) and readiness (/ready, pings every backend)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from flask import Blueprint, Flask, Response, current_app, jsonify

from mlsys.registry import registry_table
from web import warmup
from web.backends import Backends, backends
from web.openapi import doc
from web.policy import Access, policy
from web.schemas import Health, Readiness

bp = Blueprint("health", __name__)

#: Seconds one readiness check may take before it counts as failed.
CHECK_TIMEOUT = 5.0


@bp.get("/health")
@policy(Access.PUBLIC)
@doc(
    "Liveness",
    tag="operations",
    responses={200: Health},
    example={"status": "ok"},
    secured=False,
)
def health() -> Response:
    """The process serves requests. No backend is touched and no token is needed."""
    return jsonify(status="ok")


def _checks(found: Backends, app: Flask) -> dict[str, Callable[[], object]]:
    settings = found.settings
    env = settings.environments[0]
    checks = {
        "redis": found.jobs.ping,
        "warehouse": lambda: found.warehouse.exists(registry_table(settings, env)),
        "model_store": lambda: found.store.list_blobs(settings.bucket_for(env), "__ready__/"),
    }
    if warmup.ran(app):  # under gunicorn (web/gunicorn_conf.py): ready once warmed up
        checks["warm_up"] = lambda: warmup.check(app)
    return checks


def _timed(check: Callable[[], object]) -> dict:
    started = time.perf_counter()
    try:
        check()
        result: dict = {"ok": True}
    except Exception as error:  # any failure means "not ready"; say which kind
        first_line = (str(error).splitlines() or [""])[0][:200]
        result = {"ok": False, "detail": f"{type(error).__name__}: {first_line}".rstrip(": ")}
    result["seconds"] = round(time.perf_counter() - started, 4)
    return result


@bp.get("/ready")
@policy(Access.SIGNED_IN)
@doc(
    "Readiness",
    tag="operations",
    responses={200: Readiness, 503: Readiness},
    example={
        "status": "ready",
        "checks": {
            "redis": {"ok": True, "seconds": 0.0008},
            "warehouse": {"ok": True, "seconds": 0.012},
            "model_store": {"ok": True, "seconds": 0.0004},
        },
    },
)
def ready() -> Response:
    """Pings Redis, the warehouse and the model store: 200 when all answer, else 503 with
    each check's result."""
    checks = _checks(backends(), current_app._get_current_object())
    # Checks run side by side, each bounded, so a hung backend costs CHECK_TIMEOUT, not more.
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="ready")
    try:
        futures = {name: pool.submit(_timed, check) for name, check in checks.items()}
        wait(futures.values(), timeout=CHECK_TIMEOUT)
        results = {
            name: future.result()
            if future.done()
            else {
                "ok": False,
                "seconds": CHECK_TIMEOUT,
                "detail": f"no answer within {CHECK_TIMEOUT:.0f}s",
            }
            for name, future in futures.items()
        }
    finally:
        pool.shutdown(wait=False)
    ok = all(r["ok"] for r in results.values())
    response = jsonify(status="ready" if ok else "unavailable", checks=results)
    response.status_code = 200 if ok else 503
    return response
