"""The conftest check that keeps every test in exactly one layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import TESTS, layer_errors

pytestmark = pytest.mark.unit


@dataclass
class _Item:
    """What the check reads of a collected pytest item."""

    path: Path
    markers: list[str] = field(default_factory=list)

    @property
    def nodeid(self) -> str:
        return f"{self.path.relative_to(TESTS.parent)}::test_x"

    def iter_markers(self):
        return [getattr(pytest.mark, name).mark for name in self.markers]


@pytest.mark.parametrize(
    ("folder", "markers", "error"),
    [
        ("unit", [], "has no layer marker"),
        ("unit", ["slow"], "has no layer marker"),
        ("integration", ["integration", "e2e"], "['e2e', 'integration']"),
        ("unit", ["integration"], "marked integration, but tests/unit is unit"),
        ("contract", ["unit"], "tests/contract is integration"),
        ("e2e", ["integration", "slow"], "tests/e2e is e2e"),
    ],
)
def test_a_test_outside_exactly_one_matching_layer_is_refused(folder, markers, error):
    (message,) = layer_errors([_Item(TESTS / folder / "test_x.py", markers)])

    assert message.startswith(f"tests/{folder}/test_x.py::test_x: ")
    assert error in message


@pytest.mark.parametrize(
    ("folder", "markers"),
    [
        ("unit", ["unit"]),
        ("integration", ["integration", "slow"]),
        ("contract", ["integration", "contract"]),
        ("e2e", ["e2e", "slow"]),
        ("gcp", ["unit"]),
        ("gcp", ["integration", "gcp"]),
    ],
)
def test_one_matching_layer_passes(folder, markers):
    assert layer_errors([_Item(TESTS / folder / "test_x.py", markers)]) == []
