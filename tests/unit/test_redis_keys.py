"""Every Redis key of the product is built in mlsys/jobs/keys.py, and the layout stays as it was:
records in Redis (jobs in flight, schedules, sessions) must survive a deploy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mlsys.jobs import keys

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "mlsys" / "jobs" / "keys.py"


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def key_strings(path: Path) -> list[str]:
    """String literals of `path` (f-string parts included, docstrings not) that start a key
    under the product's prefix."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = _docstrings(tree)
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and node.value.startswith(keys.PREFIX)
    ]


def test_the_scan_sees_plain_and_formatted_strings(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""mlsys: a docstring."""\nA = "mlsys:x"\nB = f"mlsys:y:{A}"\nC = "ml"\n')
    assert key_strings(sample) == ["mlsys:x", "mlsys:y:"]


def test_no_redis_key_is_built_outside_the_keys_module():
    elsewhere = {
        str(path.relative_to(ROOT)): found
        for package in ("mlsys", "web", "worker")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != HOME and (found := key_strings(path))
    }
    assert elsewhere == {}, "build these keys in mlsys/jobs/keys.py"


def test_the_key_layout_is_unchanged():
    assert [
        keys.job("J"),
        keys.units("J"),
        keys.progress("J"),
        keys.done("J"),
        keys.lease("J", "shard:0"),
        keys.active(),
        keys.idempotency("ab", "k"),
        keys.seen("stall", "J"),
        keys.reaper_lock(),
        keys.workers(),
        keys.index("p", "predict", "queued"),
        keys.shard_profiles("J"),
        keys.schedule("S"),
        keys.schedule_runs("S"),
        keys.schedule_firing("S"),
        keys.schedules(),
        keys.ui_session("H"),
        keys.ui_sessions_of("ann"),
        keys.RATE_LIMIT_PREFIX,
        keys.REDBEAT_PREFIX,
    ] == [
        "mlsys:job:J",
        "mlsys:job:J:units",
        "mlsys:job:J:progress",
        "mlsys:job:J:done",
        "mlsys:lease:J:shard:0",
        "mlsys:active",
        "mlsys:idem:2:ab:k",
        "mlsys:seen:stall:J",
        "mlsys:reaper-lock",
        "mlsys:workers",
        "mlsys:jobs|p=1:p|k=predict|s=queued",
        "mlsys:profiles:J",
        "mlsys:schedule:S",
        "mlsys:schedule:S:runs",
        "mlsys:schedule:S:firing",
        "mlsys:schedules",
        "mlsys:ui:session:H",
        "mlsys:ui:sessions|p=3:ann",
        "mlsys:ratelimit",
        "mlsys:redbeat:",
    ]
