"""Aliases (`champion`, ...): they belong to the registry, not the bucket, and a sync never
touches them. Setting one moves it off any other version of the model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa

from mlsys.ids import ModelRef, VersionSpec, check_alias, check_model_name
from mlsys.registry.entry import KEYS, SCHEMA, RegistryEntry, registry_table
from mlsys.registry.read import read_registry, resolve
from mlsys.settings import Settings
from mlsys.warehouse.base import Warehouse


def set_alias(
    warehouse: Warehouse, settings: Settings, env: str, name: str, alias: str, version: object
) -> RegistryEntry:
    """Point `alias` at a version of `name`, moving it off any other version."""
    alias = check_alias(alias)
    target = resolve(warehouse, settings, env, ModelRef.parse(check_model_name(name), version))
    now = datetime.now(UTC)
    changes = []
    for entry in read_registry(warehouse, settings, env):
        if entry.model_name != name:
            continue
        aliases = [a for a in entry.aliases if a != alias]
        if entry.model_version == target.model_version:
            aliases = sorted([*aliases, alias])
        if aliases != entry.aliases:
            changes.append(
                {
                    "environment": env,
                    "model_name": name,
                    "model_version": entry.model_version,
                    "aliases": json.dumps(aliases),
                    "updated_at": now,
                }
            )
    if changes:
        schema = pa.schema([SCHEMA.field(n) for n in [*KEYS, "aliases", "updated_at"]])
        batch = pa.Table.from_pylist(changes, schema=schema)
        warehouse.merge(registry_table(settings, env), batch, KEYS)
    return resolve(warehouse, settings, env, ModelRef(name, VersionSpec(alias=alias)))
