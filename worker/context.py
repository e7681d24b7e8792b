"""Per-process handles the tasks share (created lazily, after the pool forks)."""

from __future__ import annotations

import functools

from mlsys.jobs import JobStore
from mlsys.settings import Settings, get_settings
from mlsys.store import ModelStore, open_store
from mlsys.warehouse import Warehouse, open_warehouse


@functools.cache
def settings() -> Settings:
    return get_settings()


@functools.cache
def jobs() -> JobStore:
    return JobStore.from_settings(settings())


@functools.cache
def warehouse() -> Warehouse:
    return open_warehouse(settings=settings())


@functools.cache
def store() -> ModelStore:
    return open_store(settings=settings())
