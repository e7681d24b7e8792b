"""The core library stays free of services: pipelines and backends import neither Redis, nor
Celery, nor the job engine; the job engine imports Redis but never Celery or Flask."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

CORE = (
    "mlsys.predict",
    "mlsys.commit",
    "mlsys.registry",
    "mlsys.models",
    "mlsys.monitoring",
    "mlsys.evaluation",
    "mlsys.warehouse",
    "mlsys.store",
)


def _loaded_after(modules: tuple[str, ...]) -> set[str]:
    """Top-level packages in sys.modules after importing `modules` in a fresh interpreter."""
    code = (
        "import importlib, sys\n"
        f"for name in {list(modules)!r}: importlib.import_module(name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


@pytest.mark.parametrize("module", CORE)
def test_core_modules_import_no_service(module):
    loaded = _loaded_after((module,))

    assert module in loaded  # the probe really imported it
    for forbidden in ("redis", "celery", "flask", "mlsys.jobs", "worker", "web"):
        assert forbidden not in loaded, f"{module} imports {forbidden}"


def test_the_job_engine_imports_redis_but_not_celery_or_flask():
    loaded = _loaded_after(("mlsys.jobs", "mlsys.jobs.recovery"))

    assert "redis" in loaded
    for forbidden in ("celery", "flask", "worker", "web"):
        assert forbidden not in loaded, f"mlsys.jobs imports {forbidden}"
