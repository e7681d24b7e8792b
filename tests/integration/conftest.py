"""Fixtures of the integration tests that serve the real app."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.trust_support import build_demo_home


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """An MLSYS_HOME with the demo's tables and `titanic-survival/v1` registered in dev, built
    once: `serve_api` serves a copy of it, so no test changes it."""
    return build_demo_home(tmp_path_factory.mktemp("demo") / "home")
