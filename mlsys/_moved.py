"""Old import paths of the modules that moved into capability packages.

`import mlsys.commit` still works and gives the very module object `mlsys.predict.commit`, so
code (and a test's patch) that names either path sees the same thing. New code imports the new
path; this table is the map from old to new.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

MOVED = {
    "mlsys.artifacts": "mlsys.models.artifacts",
    "mlsys.labels": "mlsys.models.labels",
    "mlsys.model_cache": "mlsys.models.cache",
    "mlsys.shard_pool": "mlsys.predict.pool",
    "mlsys.incremental": "mlsys.predict.incremental",
    "mlsys.commit": "mlsys.predict.commit",
    "mlsys.output_columns": "mlsys.predict.columns",
    "mlsys.protect": "mlsys.predict.protect",
    "mlsys.pinned": "mlsys.registry.pinned",
    "mlsys.registry_listing": "mlsys.registry.listing",
    "mlsys.pending": "mlsys.registry.pending",
    "mlsys.prediction_stats": "mlsys.monitoring.stats",
    "mlsys.cli_remote": "mlsys.cli.remote",
    "mlsys.cli_schedules": "mlsys.cli.schedules",
    "mlsys.demo": "mlsys.cli.demo",
    "mlsys.schedules": "mlsys.jobs.schedules",
    "mlsys.warehouse.bq_output": "mlsys.warehouse.bigquery.landing",
    "mlsys.warehouse.bq_retry": "mlsys.warehouse.bigquery.retry",
    "mlsys.warehouse.duckdb_sql": "mlsys.warehouse.duckdb.sql",
    "mlsys.warehouse.file_queue": "mlsys.warehouse.duckdb.file_queue",
}


class _Alias:
    """Loads an old path by importing the new one and putting it in `sys.modules` in its place;
    the import system hands back what `sys.modules` holds once the module has run."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):
        return None  # the default: a blank module, replaced in exec_module

    def exec_module(self, module) -> None:
        sys.modules[module.__name__] = importlib.import_module(self.target)


class _MovedFinder:
    """A `sys.meta_path` finder that knows only the old paths in `MOVED`."""

    def find_spec(self, fullname: str, path=None, target=None):
        new = MOVED.get(fullname)
        return None if new is None else importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    """Let the old paths import (once per process)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
