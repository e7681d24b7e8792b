"""Fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsys.settings import Settings
from tests.gcp.zetasql.plugin import (  # noqa: F401 - fixtures and the summary hook
    googlesql,
    googlesql_server,
    pytest_terminal_summary,
)

# Every test belongs to exactly one layer, so `-m unit` / `-m integration` / `-m e2e` select
# the whole suite between them; a folder's tests carry its layer (contract suites run real
# backends: integration).
LAYERS = ("unit", "integration", "e2e")
FOLDER_LAYER = {
    "unit": "unit",
    "integration": "integration",
    "contract": "integration",
    "e2e": "e2e",
}
TESTS = Path(__file__).resolve().parent


def layer_errors(items) -> list[str]:
    """Why each test without exactly one layer marker (or in the wrong folder) is refused."""
    errors = []
    for item in items:
        layers = sorted({m.name for m in item.iter_markers() if m.name in LAYERS})
        folder = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        expected = FOLDER_LAYER.get(folder)
        if len(layers) != 1:
            errors.append(f"{item.nodeid}: has {layers or 'no layer marker'}")
        elif expected and layers[0] != expected:
            errors.append(f"{item.nodeid}: marked {layers[0]}, but tests/{folder} is {expected}")
    return errors


def pytest_configure(config):
    """Run the same whatever the developer's shell exports or `.env` holds."""
    from tests.services import isolate_this_process

    isolate_this_process()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects anything
def pytest_collection_modifyitems(config, items):
    """Refuse a test without a layer marker: it would silently drop out of `-m` selections."""
    if errors := layer_errors(items):
        raise pytest.UsageError(
            "every test needs exactly one layer marker (pytestmark = pytest.mark.unit, "
            "integration or e2e):\n  " + "\n  ".join(errors)
        )


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Settings whose embedded backends live in this test's temp folder."""
    home = tmp_path / "mlsys-home"
    monkeypatch.setenv("MLSYS_HOME", str(home))
    for name in ("MLSYS_WAREHOUSE", "MLSYS_MODEL_STORE", "MLSYS_API_TOKENS", "GCP_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    return Settings(_env_file=None, MLSYS_HOME=str(home))


@pytest.fixture
def warehouse(settings):
    """The embedded warehouse in this test's home, empty: a module's own `warehouse` fixture
    asks for this one to fill it."""
    from mlsys.warehouse import open_warehouse

    warehouse = open_warehouse(settings=settings)
    yield warehouse
    warehouse.close()


@pytest.fixture
def store(settings):
    """The model store (a folder) in this test's home."""
    from mlsys.store import open_store

    return open_store(settings=settings)


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
