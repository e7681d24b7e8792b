"""`mlsys --help` starts fast: the command's modules import no data, model, cloud or service
library until a command needs it (bench/user_runs.py prints the start-up time)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

#: Libraries only the commands that run jobs, read tables or call services need.
HEAVY = (
    "sklearn",
    "scipy",
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "sqlglot",
    "google",
    "redis",
    "requests",
    "celery",
    "flask",
    "tqdm",
    "pydantic",
    "pydantic_settings",
)


def _loaded_by(args: list[str]) -> set[str]:
    """Top-level packages in sys.modules after `mlsys ARGS` ran in a fresh interpreter."""
    code = (
        "import sys\n"
        "from mlsys.cli import main\n"
        "try:\n"
        f"    main({args!r}, prog_name='mlsys')\n"
        "except SystemExit as stop:\n"
        "    assert not stop.code, stop.code\n"
        "print('\\n'.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage: mlsys" in run.stdout  # the probe really printed the help
    return set(run.stdout.split())


@pytest.mark.parametrize(
    "args",
    [["--help"], ["predict", "--help"], ["jobs", "list", "--help"], ["schedule", "--help"]],
    ids=" ".join,
)
def test_help_imports_no_heavy_library(args):
    loaded = _loaded_by(args)

    assert "click" in loaded
    assert not loaded & set(HEAVY), f"mlsys {' '.join(args)} imports {sorted(loaded & set(HEAVY))}"


def test_a_local_predict_imports_no_sql_translator_cloud_or_service_library():
    code = (
        "import sys\n"
        "import mlsys.cli.commands, mlsys.predict, mlsys.warehouse.duckdb, mlsys.store.local\n"
        "print('\\n'.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(run.stdout.split())

    assert {"mlsys", "pyarrow", "duckdb"} <= loaded  # the probe really imported the pipeline
    assert not loaded & {"sqlglot", "google", "redis", "requests", "celery", "flask"}
