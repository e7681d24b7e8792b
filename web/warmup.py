"""Warm a server process before it takes traffic: what the first submit would otherwise pay.

A fresh gunicorn worker answered its first requests in 0.3-1.5 s (against ~10 ms warm): it
opened the warehouse and imported its modules, started DuckDB and attached the file, read the
registry, connected to Redis (jobs and rate limits) and to the Celery broker, and compiled the
URL map. `warm_up` does each of these once, here, and remembers how it went: /ready answers 503
while a step has failed (and tries the warm-up again on each call until it passes), so a worker
that could not warm up never reports ready. A failing step is logged and the rest go on: a
backend that is down at start must not stop the worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from flask import Flask, url_for

from mlsys.registry import read_registry, registry_table
from web.backends import Backends

log = logging.getLogger(__name__)

#: Where the app keeps its process's `WarmUp`.
KEY = "mlsys_warm_up"
#: Seconds the warm-up waits for the request threads to start side by side.
THREADS_TIMEOUT = 10.0


@dataclass
class WarmUp:
    """How the last warm-up of this process went: each step's error, if it failed."""

    seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _steps(app: Flask, found: Backends) -> dict[str, Callable[[], object]]:
    settings = found.settings

    def warehouse() -> None:
        # Opening imports the warehouse's modules; reading the registry starts this thread's
        # DuckDB, attaches the file and fills the API's cache of table checks.
        for env in settings.environments:
            table = registry_table(settings, env)
            if found.warehouse.exists(table):
                found.warehouse.schema(table)
            read_registry(found.warehouse, settings, env)

    def broker() -> None:
        # A submit sends its first unit through the producer pool: open one connection now.
        with found.celery.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1)
            producer.channel  # noqa: B018 - opening the channel is the point

    def rate_limits() -> None:
        limiter = app.extensions.get("mlsys_limiter")
        # The limiter swallows its storage's errors (a submit then goes unlimited): ask.
        if limiter is not None and limiter.enabled and not limiter.storage.check():
            raise ConnectionError("the rate limits' Redis does not answer")

    def routes() -> None:
        with app.test_request_context():
            url_for("jobs.get_job", job_id="0" * 32)

    return {
        "redis": found.jobs.ping,
        "rate_limits": rate_limits,
        "warehouse": warehouse,
        "model_store": lambda: found.store.list_blobs(
            settings.bucket_for(settings.environments[0]), "__ready__/"
        ),
        "broker": broker,
        "routes": routes,
    }


def warm_up(app: Flask, threads: Executor | None = None, thread_count: int = 0) -> WarmUp:
    """Run every step (each failure logged, none raised) and record the result on the app.

    Args:
        threads: the server's request thread pool, if it has one: each of its `thread_count`
            threads starts its own DuckDB for reads (mlsys.warehouse.duckdb.readers), so the
            warehouse step runs once in each of them too.
    """
    found: Backends = app.extensions["mlsys"]
    started = time.perf_counter()
    result = WarmUp()
    with app.app_context():
        for name, step in _steps(app, found).items():
            try:
                step()
            except Exception as error:  # a backend down at start: say so, go on
                first_line = (str(error).splitlines() or [""])[0][:200]
                result.failed[name] = f"{type(error).__name__}: {first_line}".rstrip(": ")
                log.warning("warm-up step %s failed: %s", name, result.failed[name])
            else:
                result.steps.append(name)
        if threads is not None and thread_count > 1 and "warehouse" in result.steps:
            try:
                _in_every_thread(app, threads, thread_count, _per_thread(app, found))
            except Exception as error:
                result.failed["threads"] = f"{type(error).__name__}: {error}"[:200]
                log.warning("warm-up of the request threads failed: %s", result.failed["threads"])
            else:
                result.steps.append("threads")
    result.seconds = round(time.perf_counter() - started, 3)
    app.extensions[KEY] = result
    log.info(
        "warm-up of process %d %s in %.3fs (done: %s%s)",
        os.getpid(),
        "done" if result.ok else "incomplete",
        result.seconds,
        ", ".join(result.steps) or "nothing",
        "; failed: " + ", ".join(result.failed) if result.failed else "",
    )
    return result


def warm_up_within(app: Flask, seconds: float, threads: Executor | None, count: int) -> None:
    """`warm_up`, given at most `seconds`: gunicorn stops a worker that stays silent for its
    timeout while booting, so a backend that hangs must cost readiness, not the worker. A
    warm-up still running then records its result when it ends."""
    app.extensions[KEY] = WarmUp(failed={"warm_up": "still running"})
    runner = threading.Thread(
        target=warm_up, args=(app, threads, count), name="warm-up", daemon=True
    )
    runner.start()
    runner.join(seconds)
    if runner.is_alive():
        log.warning("warm-up still running after %.0fs: serving, not ready until it ends", seconds)


def _per_thread(app: Flask, found: Backends) -> Callable[[threading.Barrier], None]:
    """What each request thread does once: start its DuckDB for reads, and hold a broker
    producer and a job-store connection of its own while the others do the same, so that a
    burst of submits finds as many of each open as there are threads (opening them costs a
    submit 100-200 ms when every thread does it at once)."""
    warehouse = _steps(app, found)["warehouse"]

    def step(together: threading.Barrier) -> None:
        warehouse()
        with found.celery.producer_or_acquire() as producer, found.jobs.connection():
            producer.connection.ensure_connection(max_retries=1)
            producer.channel  # noqa: B018 - opening the channel is the point
            together.wait()  # every thread holds one at once: the pools open `count`

    return step


def _in_every_thread(
    app: Flask, threads: Executor, count: int, step: Callable[[threading.Barrier], object]
) -> None:
    # An executor reuses an idle thread rather than start one: holding every task at a
    # barrier until all have started makes each run in a thread of its own.
    barrier = threading.Barrier(count, timeout=THREADS_TIMEOUT)
    together = threading.Barrier(count, timeout=THREADS_TIMEOUT)

    def task() -> None:
        barrier.wait()
        with app.app_context():
            step(together)

    for future in [threads.submit(task) for _ in range(count)]:
        future.result(timeout=THREADS_TIMEOUT * 2)


def ran(app: Flask) -> bool:
    """Whether this process was warmed up (under gunicorn; not the Flask dev server, tests)."""
    return KEY in app.extensions


def check(app: Flask) -> WarmUp:
    """For /ready: raises while this process's warm-up has failed, after trying it again."""
    result: WarmUp = app.extensions[KEY]
    if not result.ok:
        result = warm_up(app)
    if not result.ok:
        failed = "; ".join(f"{step}: {why}" for step, why in result.failed.items())
        raise RuntimeError(f"warm-up failed ({failed})")
    return result
