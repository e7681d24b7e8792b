"""Verified models kept in memory per process, bounded by size (MLSYS_MODEL_CACHE_MB).

A worker process runs many shards and jobs of the same model version; unpickling a forest takes
seconds, so a version is loaded once per process and reused while it fits. Keyed by (bucket,
name, version, sha256): the hash pins the bytes, so a re-registered artifact is a new entry. The
size of an entry is its artifact's size, a fair proxy for what a fitted model holds in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class ModelCache:
    """Least-recently-used models up to `max_bytes` in total."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        with self._lock:
            return sum(size for _model, size in self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[0]

    def put(self, key: Hashable, model: Any, size: int) -> None:
        """Keep `model`, evicting the least recently used; one larger than the whole cache is
        not kept (the caller still has it)."""
        with self._lock:
            self._entries.pop(key, None)
            if size > self.max_bytes:
                return
            self._entries[key] = (model, size)
            total = sum(s for _m, s in self._entries.values())
            while total > self.max_bytes:
                _key, (_model, evicted) = self._entries.popitem(last=False)
                total -= evicted

    def resize(self, max_bytes: int) -> None:
        with self._lock:
            self.max_bytes = max_bytes
            total = sum(s for _m, s in self._entries.values())
            while self._entries and total > max_bytes:
                _key, (_model, evicted) = self._entries.popitem(last=False)
                total -= evicted

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
