"""A whole predict job in this process (`mlsys predict`, notebooks, the demo): prepare, plan,
every shard (on a local pool when asked), commit once, and the job's drift.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from mlsys.errors import Cancelled
from mlsys.predict.monitored import record_job_stats, run_monitored_shard
from mlsys.predict.spec import CancelCheck, PredictSpec, PreparedPredict, Progress
from mlsys.predict.steps import (
    commit_job,
    load_model,
    plan_shards,
    prepare_predict,
    shards_for_slots,
)
from mlsys.settings import Settings
from mlsys.store.base import ModelStore
from mlsys.warehouse.base import JobScope, Warehouse


@dataclass(frozen=True)
class PredictResult:
    job_id: str
    output_table: str
    rows_written: int
    model: str
    shards: int
    seconds: float
    already_committed: bool = False
    monitoring: dict[str, Any] | None = None  # drift summary (mlsys.monitoring.stats)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def predict_table(
    spec: PredictSpec,
    warehouse: Warehouse,
    store: ModelStore,
    settings: Settings,
    job_id: str,
    progress: Progress | None = None,
    cancelled: CancelCheck | None = None,
    on_prepared: Callable[[PreparedPredict], None] | None = None,
    workers: int = 1,
) -> PredictResult:
    """Run a whole job here: prepare, stream every shard (on up to `workers` processes, all
    reading one snapshot), commit once.

    A failure or cancel anywhere leaves the output table as it was.
    """
    started = time.monotonic()
    prepared = prepare_predict(spec, warehouse, settings, store)
    if on_prepared is not None:
        on_prepared(prepared)
    scope = JobScope(job_id, spec.env)
    # Loading the model (importing scikit-learn, unpickling) is Python work and the snapshot
    # is DuckDB's or BigQuery's: overlap them. The loaded model stays in the process cache.
    loader = _Preload(prepared, store, settings)
    try:
        plan = plan_shards(
            prepared, warehouse, settings, job_id, shards_for_slots(prepared, settings, workers)
        )
        loader.result()
        if workers > 1 and len(plan.shards) > 1:
            from mlsys.predict.pool import run_shards

            profiles = run_shards(
                prepared,
                plan.shards,
                job_id,
                warehouse,
                store,
                settings,
                workers,
                progress,
                cancelled,
            )
        else:
            profiles = [
                run_monitored_shard(
                    prepared, shard, index, job_id, warehouse, store, settings, progress, cancelled
                )
                for index, shard in enumerate(plan.shards)
            ]
        profiles = [p for p in profiles if p is not None]
        if cancelled is not None and cancelled():
            raise Cancelled(f"Job {job_id} was cancelled.")
        rows, already = commit_job(prepared, warehouse, job_id, len(plan.shards))
        monitoring = (
            record_job_stats(warehouse, settings, prepared, job_id, profiles) if profiles else None
        )
    finally:
        loader.join()
        warehouse.discard(scope)
    return PredictResult(
        job_id=job_id,
        output_table=str(spec.output_table),
        rows_written=rows,
        model=prepared.model.ref,
        shards=len(plan.shards),
        seconds=round(time.monotonic() - started, 3),
        already_committed=already,
        monitoring=monitoring,
    )


class _Preload(threading.Thread):
    """Load a job's model in the background; `result()` re-raises what loading raised."""

    def __init__(self, prepared: PreparedPredict, store: ModelStore, settings: Settings) -> None:
        super().__init__(name="model-preload", daemon=True)
        self._args = (prepared.model, store, settings)
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            load_model(*self._args)
        except BaseException as error:  # re-raised in the caller by result()
            self._error = error

    def result(self) -> None:
        self.join()
        if self._error is not None:
            raise self._error
