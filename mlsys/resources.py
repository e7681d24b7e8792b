"""What this process may use: CPUs and memory of its container (cgroup) or machine.

`os.cpu_count()` and /proc/meminfo describe the host; a container on Cloud Run, in compose or
on Kubernetes gets a slice of it, and sizing pools or DuckDB from the host's figures
oversubscribes the slice (or gets the process OOM-killed). Read the cgroup (v2, then v1)
first, then the CPU affinity, then the machine.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

from mlsys.settings import Settings

#: Where gunicorn's config tells each API process its request threads (web/gunicorn_conf.py):
#: its waiting slots (web/waiting.py) and its broker producers (worker/app.py) follow it.
WEB_THREADS_ENV = "MLSYS_WEB_THREADS"

_CGROUP = Path("/sys/fs/cgroup")
#: cgroup v1 reports "no limit" as a huge number near 2**63.
_UNLIMITED = 2**60


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_cpus(root: Path = _CGROUP) -> float | None:
    """CPUs of the cgroup's quota, if it has one (v2 cpu.max, v1 cfs quota/period)."""
    v2 = _read(root / "cpu.max")
    if v2:
        quota, _, period = v2.partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    quota, period = (
        _read(root / "cpu" / "cpu.cfs_quota_us"),
        _read(root / "cpu" / "cpu.cfs_period_us"),
    )
    if quota and period and int(quota) > 0 and int(period) > 0:
        return int(quota) / int(period)
    return None


def _cgroup_memory(root: Path = _CGROUP) -> int | None:
    """Bytes of the cgroup's memory limit, if it has one."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        value = _read(path)
        if value and value != "max" and int(value) < _UNLIMITED:
            return int(value)
    return None


def web_threads() -> int | None:
    """The request threads of this API process, as gunicorn's config set them (else None)."""
    value = os.environ.get(WEB_THREADS_ENV, "")
    return int(value) if value.isascii() and value.isdigit() else None


@functools.cache
def available_cpus() -> int:
    """Whole CPUs this process may use: the least of quota, affinity and the machine (>= 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


@functools.cache
def available_memory() -> int:
    """Bytes of memory this process may use: the cgroup limit, else the machine's RAM."""
    limit = _cgroup_memory()
    try:
        machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        machine = 0
    if limit is None:
        return machine or 4 * 2**30
    return min(limit, machine) if machine else limit


def duckdb_config(settings: Settings) -> dict[str, str | int]:
    """DuckDB connection settings from Settings, else from the container or machine: a quarter
    of memory (at most 4GB; DuckDB spills beyond it) and as many threads as CPUs."""
    memory = settings.duckdb_memory_limit
    if not memory:
        mb = min(4096, max(256, available_memory() // 4 // 2**20))
        memory = f"{mb}MB"
    return {"memory_limit": memory, "threads": settings.duckdb_threads or available_cpus()}
