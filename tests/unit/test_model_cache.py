"""The per-process model cache: bounded by size, least recently used out first."""

from __future__ import annotations

import pytest

from mlsys.model_cache import ModelCache

pytestmark = pytest.mark.unit


def test_keeps_models_up_to_the_size_bound_and_evicts_the_least_recently_used():
    cache = ModelCache(max_bytes=100)
    cache.put("a", "model-a", 40)
    cache.put("b", "model-b", 40)
    assert cache.get("a") == "model-a"  # a is now the most recently used
    cache.put("c", "model-c", 40)
    assert "b" not in cache
    assert (cache.get("a"), cache.get("c")) == ("model-a", "model-c")
    assert cache.bytes == 80


def test_a_model_larger_than_the_cache_is_not_kept():
    cache = ModelCache(max_bytes=10)
    cache.put("big", object(), 11)
    assert len(cache) == 0 and cache.get("big") is None


def test_shrinking_evicts_and_zero_keeps_nothing():
    cache = ModelCache(max_bytes=100)
    cache.put("a", 1, 30)
    cache.put("b", 2, 30)
    cache.resize(40)
    assert "a" not in cache and cache.get("b") == 2
    cache.resize(0)
    assert len(cache) == 0
    cache.put("c", 3, 1)
    assert len(cache) == 0
