"""The model registry: which model versions exist, which may load, and their aliases.

Owns the registry table `mlsys_{env}.model_registry` and everything read from or written to it:
- `entry`: a row as a value (`RegistryEntry`), the table's schema, the statuses;
- `read`: the rows that may be trusted, resolving a `ModelRef`, re-checking a pinned model;
- `sync`: scanning the model store into the table (a re-sync of nothing new writes nothing);
- `aliases`: moving an alias (`champion`, ...) onto a version;
- `pinned`: the exact version a job was resolved to (`PinnedModel`), carried in the job record;
- `listing`: the paged `GET /models` listing;
- `pending`: reading features from a model registered without metadata, at its first predict.
"""

from mlsys.registry.aliases import set_alias
from mlsys.registry.entry import (
    ACTIVE,
    INVALID,
    KEYS,
    LOADABLE,
    MISSING,
    PENDING,
    SCHEMA,
    SYNC_COLUMNS,
    RegistryEntry,
    registry_table,
)
from mlsys.registry.listing import VersionPage, list_versions
from mlsys.registry.pending import infer_pending
from mlsys.registry.pinned import PinnedModel
from mlsys.registry.read import (
    check_pinned,
    read_registry,
    resolve,
    trusted_entries,
    untrusted_reason,
)
from mlsys.registry.sync import SyncResult, sync_registry

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
