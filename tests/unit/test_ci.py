"""CI runs the tests one way, here and on GitHub: the same script, the same emulators, the
same refusal to skip a missing emulator."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.services import repo_root

pytestmark = pytest.mark.unit

ROOT = repo_root()


def _commands(script: str) -> list[str]:
    """Non-comment lines of a shell script, stripped."""
    lines = (ROOT / script).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_the_test_script_installs_the_emulators_and_refuses_to_skip_them():
    commands = _commands(".ci/test")

    install = commands.index("bash tests/gcp/emulators/install")
    require = commands.index("export MLSYS_REQUIRE_EMULATORS=1")
    run = commands.index('exec uv run --frozen pytest --durations=25 "$@"')  # slowest 25 shown
    assert install < require < run == len(commands) - 1
    assert "set -euo pipefail" in commands


def test_ci_and_the_pr_workflow_both_run_the_test_script():
    assert "bash .ci/test" in _commands(".ci/run")
    # ... and nothing else runs pytest on its own terms.
    assert not [c for c in _commands(".ci/run") if re.match(r"(uv run .*)?pytest\b", c)]
    workflow = yaml.safe_load((ROOT / ".github/workflows/pr.yml").read_text())
    tests = workflow["jobs"]["tests"]
    assert [step.get("run") for step in tests["steps"] if "run" in step] == ["bash .ci/test"]
    # Debian as root, like .ci/run's fresh machine: the script installs what it needs itself.
    assert tests["container"].endswith("-bookworm")
    assert "services" not in tests  # the tests start their own redis-server
