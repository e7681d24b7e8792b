"""CPUs and memory of the container or machine, and the DuckDB settings derived from them."""

from __future__ import annotations

import pytest

from mlsys import resources
from mlsys.settings import Settings

pytestmark = pytest.mark.unit


def test_cgroup_v2_quota_and_memory(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "memory.max").write_text(str(2 * 2**30))
    assert resources._cgroup_cpus(tmp_path) == 1.5
    assert resources._cgroup_memory(tmp_path) == 2 * 2**30


def test_cgroup_v2_without_limits(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "memory.max").write_text("max\n")
    assert resources._cgroup_cpus(tmp_path) is None
    assert resources._cgroup_memory(tmp_path) is None


def test_cgroup_v1_quota_and_unlimited_memory(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712")
    assert resources._cgroup_cpus(tmp_path) == 2.0
    assert resources._cgroup_memory(tmp_path) is None


def test_no_cgroup_files(tmp_path):
    assert resources._cgroup_cpus(tmp_path) is None
    assert resources._cgroup_memory(tmp_path) is None


def test_duckdb_config_from_settings_wins(tmp_path):
    settings = Settings(_env_file=None, MLSYS_DUCKDB_MEMORY_LIMIT="300MB", MLSYS_DUCKDB_THREADS=3)
    assert resources.duckdb_config(settings) == {"memory_limit": "300MB", "threads": 3}


def test_duckdb_config_defaults_to_the_machine(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 8 * 2**30)
    monkeypatch.setattr(resources, "available_cpus", lambda: 2)
    config = resources.duckdb_config(Settings(_env_file=None))
    assert config == {"memory_limit": "2048MB", "threads": 2}
