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


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A private redis-server for the whole test session."""
    from tests.services import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_client(redis_url):
    """The session's Redis, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    return client
