"""Run the shards of one in-process job on a local pool of processes (`mlsys predict --workers`).

A model's `predict_proba` holds the GIL for most of its run, so threads would not use a second
core: shards go to processes. Every process reads its shards from the job's one snapshot and
stages its own Parquet file, exactly as Celery workers would; the parent commits once.

Where both backends survive a fork (DuckDB files and local folders hold no connection between
calls), the pool forks after the parent loaded the model, so children share it instead of
importing scikit-learn and unpickling again. Elsewhere (cloud clients with live gRPC channels)
children start fresh and open their own backends from the settings.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from mlsys.errors import Cancelled
from mlsys.predict.monitored import run_monitored_shard
from mlsys.predict.spec import PreparedPredict
from mlsys.settings import Settings
from mlsys.store.base import ModelStore
from mlsys.warehouse.base import Warehouse

# Set in the parent before a fork (inherited), or by the initializer of a fresh process.
_CHILD: dict[str, Any] = {}


def _init(settings: Settings, queue, inherited: bool) -> None:
    _CHILD["queue"] = queue
    if not inherited:
        from mlsys.store import open_store
        from mlsys.warehouse import open_warehouse

        _CHILD.update(
            settings=settings,
            warehouse=open_warehouse(settings=settings),
            store=open_store(settings=settings),
        )


def _run(prepared: PreparedPredict, shard: dict, index: int, job_id: str):
    queue = _CHILD["queue"]
    return run_monitored_shard(
        prepared,
        shard,
        index,
        job_id,
        _CHILD["warehouse"],
        _CHILD["store"],
        _CHILD["settings"],
        progress=queue.put,
    )


def run_shards(
    prepared: PreparedPredict,
    shards: list[dict[str, Any]],
    job_id: str,
    warehouse: Warehouse,
    store: ModelStore,
    settings: Settings,
    workers: int,
    progress: Callable[[int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> int:
    """Stage every shard using up to `workers` processes. Returns each shard's profile (None
    without monitoring), in shard order."""
    fork = warehouse.fork_safe and store.fork_safe
    context = multiprocessing.get_context("fork" if fork else "spawn")
    queue = context.SimpleQueue()
    if fork:
        _CHILD.update(settings=settings, warehouse=warehouse, store=store)
    drained = threading.Event()

    def drain() -> None:
        while (rows := queue.get()) is not None:
            if progress is not None:
                progress(rows)
        drained.set()

    reader = threading.Thread(target=drain, name="shard-progress", daemon=True)
    reader.start()
    profiles: dict[int, Any] = {}
    try:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(shards)),
            mp_context=context,
            initializer=_init,
            initargs=(settings, queue, fork),
        ) as pool:
            futures = {
                pool.submit(_run, prepared, shard, index, job_id): index
                for index, shard in enumerate(shards)
            }
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        profiles[futures[future]] = future.result()
                    if cancelled is not None and cancelled():
                        raise Cancelled(f"Job {job_id} was cancelled.")
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
    finally:
        queue.put(None)
        drained.wait(5)
        _CHILD.clear()
    return [profiles[index] for index in range(len(shards))]
