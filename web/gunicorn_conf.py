"""gunicorn settings of the API: `gunicorn -c python:web.gunicorn_conf "web:create_app()"`.

Every gunicorn worker is a process of its own, and prometheus-client counts per process unless
PROMETHEUS_MULTIPROC_DIR names a folder where each process writes its values for /metrics to
sum. Without it a scrape sees one worker's counts (about 1/N of the traffic) and jumps between
workers from scrape to scrape. So this config always sets it (a fresh private folder when the
environment does not name one), and empties it when the server starts: files left by a previous
run would be counted again.
https://prometheus.github.io/client_python/multiprocess/
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import values

# Set before the workers fork. prometheus_client picks how to store values when it is imported,
# and importing this module imported the `web` package and prometheus_client with it: pick again.
_OWN = (
    None if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else tempfile.mkdtemp(prefix="mlsys-prom-")
)
if _OWN:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _OWN
values.ValueClass = values.get_value_class()


def on_starting(server) -> None:
    """Start from an empty metrics folder (a restart must not count the last run again)."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    server.log.info("metrics of every worker are summed in PROMETHEUS_MULTIPROC_DIR=%s", folder)


def on_exit(server) -> None:
    """Remove the folder this config made up (one named by the environment stays)."""
    if _OWN:
        shutil.rmtree(_OWN, ignore_errors=True)


def child_exit(server, worker) -> None:
    """Drop a dead worker's live gauges (counters and histograms keep its counts)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker) -> None:
    """Tell the app its thread count: at most half the threads wait for jobs (web/waiting.py)."""
    from mlsys.resources import WEB_THREADS_ENV

    os.environ[WEB_THREADS_ENV] = str(server.cfg.threads)


def post_worker_init(worker) -> None:
    """Warm the worker's app before it accepts a connection (web/warmup.py): its first
    requests would otherwise pay the imports and connections a submit needs. A failed step is
    logged and leaves /ready answering 503; it never stops the worker."""
    from flask import Flask

    from web.warmup import warm_up_within

    app = worker.wsgi
    if isinstance(app, Flask):
        # Well within the time gunicorn gives a silent worker before it stops it.
        seconds = min(20.0, worker.cfg.timeout / 2)
        warm_up_within(app, seconds, getattr(worker, "tpool", None), worker.cfg.threads)
    else:
        worker.log.warning("no warm-up: the WSGI app is not the mlsys Flask app")
