"""The model registry: which model versions exist, which may load, and their aliases.

Owns the registry table `mlsys_{env}.model_registry` and everything read from or written to it:
- `sync`: the entry type (`RegistryEntry`), scanning the model store into the table, reading
  and trusting entries, resolving a `ModelRef`, setting aliases;
- `pinned`: the exact version a job was resolved to (`PinnedModel`), carried in the job record;
- `listing`: the paged `GET /models` listing;
- `pending`: reading features from a model registered without metadata, at its first predict.
"""

from mlsys.registry.listing import VersionPage, list_versions
from mlsys.registry.pending import infer_pending
from mlsys.registry.pinned import PinnedModel
from mlsys.registry.sync import (
    ACTIVE,
    INVALID,
    KEYS,
    LOADABLE,
    MISSING,
    PENDING,
    SCHEMA,
    SYNC_COLUMNS,
    RegistryEntry,
    SyncResult,
    check_pinned,
    read_registry,
    registry_table,
    resolve,
    set_alias,
    sync_registry,
    trusted_entries,
    untrusted_reason,
)

__all__ = [
    "ACTIVE",
    "INVALID",
    "KEYS",
    "LOADABLE",
    "MISSING",
    "PENDING",
    "SCHEMA",
    "SYNC_COLUMNS",
    "PinnedModel",
    "RegistryEntry",
    "SyncResult",
    "VersionPage",
    "check_pinned",
    "infer_pending",
    "list_versions",
    "read_registry",
    "registry_table",
    "resolve",
    "set_alias",
    "sync_registry",
    "trusted_entries",
    "untrusted_reason",
]
