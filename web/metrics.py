"""Request metrics, one access-log line per request, and GET /metrics (Prometheus).

Every label comes from a closed set, so no request can add series: the method is one of the
HTTP methods the app knows (else `other`), the route is the matched rule (else `<unmatched>`)
and the status one of the standard codes (else its class, e.g. `5xx`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from http import HTTPStatus

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from web.openapi import doc
from web.policy import Access, policy

log = logging.getLogger("web.access")
bp = Blueprint("metrics", __name__)


class Metrics:
    """The app's Prometheus metrics, on a registry of its own (tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlsys_http_requests_total",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlsys_http_request_duration_seconds",
            "HTTP request latency by method and route.",
            ["method", "route"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "mlsys_jobs_submitted_total",
            "Jobs accepted by the API, by kind.",
            ["kind"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        # Under gunicorn with several workers each process counts alone; with
        # PROMETHEUS_MULTIPROC_DIR set, prometheus-client sums them from shared files.
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


#: Methods counted under their own name; anything else a client invents is `other`.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_KNOWN_STATUSES = frozenset(int(s) for s in HTTPStatus)


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


def status_label(status: int) -> str:
    return str(status) if status in _KNOWN_STATUSES else f"{status // 100}xx"


def job_submitted(kind: str) -> None:
    """Count an accepted job."""
    current_app.extensions["mlsys_metrics"].jobs.labels(kind=kind).inc()


def _start() -> None:
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    # The rule, not the path, so unknown ids and 404 probes do not explode label cardinality.
    route = request.url_rule.rule if request.url_rule else "<unmatched>"
    metrics: Metrics = current_app.extensions["mlsys_metrics"]
    method = method_label(request.method)
    metrics.requests.labels(method, route, status_label(response.status_code)).inc()
    metrics.latency.labels(method, route).observe(seconds)
    fields = {
        "event": "request",
        "method": request.method[:32],
        "path": request.path,
        "route": route,
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 2),
        "job_id": g.get("job_id"),
    }
    log.info(json.dumps(fields, separators=(",", ":")), extra={"http": fields})
    return response


@bp.get("/metrics")
@policy(Access.SIGNED_IN)
@doc(
    "Prometheus metrics",
    tag="operations",
    responses={200: ("text/plain", "Prometheus text exposition format.")},
    example="# HELP mlsys_jobs_submitted_total Jobs accepted by the API, by kind.\n",
)
def metrics() -> Response:
    """Request counts and latency by route and status; jobs submitted by kind."""
    body = current_app.extensions["mlsys_metrics"].exposition()
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0])


def init_app(app: Flask) -> None:
    """Time every request; called before auth's init so refused requests are counted too."""
    app.extensions["mlsys_metrics"] = Metrics()
    app.before_request(_start)
    app.after_request(_finish)
