"""Fixtures shared by every test layer."""

from __future__ import annotations

import pytest

from mlsys.settings import Settings


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Settings whose embedded backends live in this test's temp folder."""
    home = tmp_path / "mlsys-home"
    monkeypatch.setenv("MLSYS_HOME", str(home))
    for name in ("MLSYS_WAREHOUSE", "MLSYS_MODEL_STORE", "MLSYS_API_TOKENS", "GCP_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    return Settings(_env_file=None, MLSYS_HOME=str(home))
