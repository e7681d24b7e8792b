"""The monitoring wiring of a predict job, written once for the workers and the in-process run:
each shard profiled while it streams, and the job's drift recorded at its commit.

What a profile is and how drift is graded is `mlsys.monitoring`'s; this module only feeds it
a prepared job's values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlsys.monitoring.profiles import Profile
from mlsys.monitoring.stats import ShardMonitor, record_stats, reference_of
from mlsys.predict.spec import CancelCheck, PreparedPredict, Progress
from mlsys.predict.steps import run_shard
from mlsys.settings import Settings
from mlsys.store.base import ModelStore
from mlsys.warehouse.base import Warehouse


def shard_monitor(prepared: PreparedPredict) -> ShardMonitor:
    """A monitor for one shard of a prepared predict job."""
    return ShardMonitor(
        reference_of(prepared.reference_profile),
        list(prepared.features),
        prepared.target,
        prepared.task,
    )


def run_monitored_shard(
    prepared: PreparedPredict,
    shard: dict[str, Any],
    index: int,
    job_id: str,
    warehouse: Warehouse,
    store: ModelStore,
    settings: Settings,
    progress: Progress | None = None,
    cancelled: CancelCheck | None = None,
) -> Profile | None:
    """Run one shard, profiling it when monitoring is on; returns its profile (or None)."""
    monitor = shard_monitor(prepared) if settings.monitoring else None
    run_shard(
        prepared,
        shard,
        index,
        job_id,
        warehouse,
        store,
        settings,
        progress,
        cancelled,
        observe=monitor.observe if monitor else None,
    )
    return monitor.result() if monitor else None


def record_job_stats(
    warehouse: Warehouse,
    settings: Settings,
    prepared: PreparedPredict,
    job_id: str,
    profiles: Iterable[Profile],
    principal: str | None = None,
) -> dict[str, Any]:
    """Store a job's per-feature drift, owned by `principal` (who submitted it), and return the
    summary its job record shows (never raises: see `mlsys.monitoring.stats.record_stats`)."""
    model = prepared.model
    return record_stats(
        warehouse,
        settings,
        prepared.env,
        job_id,
        model.model_name,
        model.model_version,
        prepared.reference_profile,
        profiles,
        principal,
    )
