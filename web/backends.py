"""What the views work with: settings, job store, warehouse, model store, Celery app."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from celery import Celery
from flask import current_app

from mlsys.jobs import JobStore
from mlsys.settings import Settings
from mlsys.store import ModelStore, open_store
from mlsys.warehouse import Warehouse, open_warehouse

#: At most this long the API answers its checks of a table from memory, when a write from
#: outside mlsys (which it cannot see) changed the table.
CHECK_CACHE_SECONDS = 30.0


@dataclass
class Backends:
    """One per app. Warehouse and store open on first use, so /health and a misconfigured
    backend never stop the app from starting."""

    settings: Settings
    jobs: JobStore
    celery: Celery
    _warehouse: Warehouse | None = None
    _store: ModelStore | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any], settings: Settings) -> Backends:
        jobs = config.get("JOB_STORE") or _job_store(settings)
        celery = config.get("CELERY_APP") or _celery(settings)
        return cls(settings, jobs, celery, config.get("WAREHOUSE"), config.get("MODEL_STORE"))

    @functools.cached_property
    def warehouse(self) -> Warehouse:
        if self._warehouse is not None:
            return self._warehouse
        warehouse = open_warehouse(settings=self.settings)
        # The API's account runs query jobs (the monitoring reads) but opens no Storage Read
        # sessions (infra/permissions.toml): its query results come over REST.
        if hasattr(warehouse, "read_sessions"):
            warehouse.read_sessions = False
        # A burst of submits checks the same tables over and over: answer from memory while
        # they did not change (the workers check again before they run and commit).
        warehouse.cache_reads(CHECK_CACHE_SECONDS)
        return warehouse

    @functools.cached_property
    def store(self) -> ModelStore:
        return self._store or open_store(settings=self.settings)


def _job_store(settings: Settings) -> JobStore:
    # A request waiting on an unreachable Redis answers 503 within seconds, not hangs.
    return JobStore.from_settings(settings, socket_timeout=10)


def _celery(settings: Settings) -> Celery:
    # The worker's own configuration (JSON only, queue names), built from these settings so a
    # test or a second app points at its own broker.
    from worker.app import create_celery

    return create_celery(settings)


def backends() -> Backends:
    """The current app's backends."""
    return current_app.extensions["mlsys"]
