"""README's "Where things are" map is the packages' own docstrings: it fails when they differ."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "where-map"


def test_the_readme_map_matches_the_tree():
    checked = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_map_names_every_package_with_what_it_owns():
    readme = (ROOT / "README.md").read_text()
    map_rows = readme.partition("<!-- where-map:start")[2].partition("<!-- where-map:end")[0]
    for package in ("mlsys/predict/", "mlsys/registry/", "mlsys/jobs/", "worker/", "web/ui/"):
        row = next(line for line in map_rows.splitlines() if line.startswith(f"| `{package}`"))
        assert "(no docstring)" not in row
    assert "`incremental`: Incremental predictions" in map_rows  # a newcomer's way in
