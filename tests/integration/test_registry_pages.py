"""The registry at scale: listing in pages read in the warehouse, and re-syncs that send nothing."""

from __future__ import annotations

import json

import pytest
import requests

from mlsys.artifacts import sha256_hex
from mlsys.errors import InvalidRequest
from mlsys.registry import read_registry, registry_table, sync_registry
from mlsys.registry_listing import list_versions
from tests.services import serve_wsgi
from web import create_app

pytestmark = pytest.mark.integration

ENV = "dev"
DATA = b"bytes the sync hashes; it never loads them"
VERSIONS = {"alpha": 4, "beta": 9, "gamma": 3}


@pytest.fixture
def registered(settings, warehouse, store):
    """16 versions of three models, synced."""
    bucket = settings.bucket_for(ENV)
    meta = json.dumps({"features": ["a"], "target": "y", "sha256": sha256_hex(DATA)}).encode()
    for name, count in VERSIONS.items():
        for version in range(1, count + 1):
            store.write(bucket, f"{name}/v{version}/model.pkl", DATA)
            store.write(bucket, f"{name}/v{version}/metadata.json", meta)
    sync_registry(warehouse, store, settings, ENV)
    return store


def _keys(entries) -> list[tuple[str, int]]:
    return [(e.model_name, e.model_version) for e in entries]


def test_pages_cover_the_registry_in_order(settings, warehouse, registered):
    everything = _keys(read_registry(warehouse, settings, ENV))
    assert len(everything) == sum(VERSIONS.values())
    seen, token, pages = [], None, 0
    while True:
        page = list_versions(warehouse, settings, ENV, page_size=5, page_token=token)
        seen += _keys(page.entries)
        pages += 1
        if (token := page.next_token) is None:
            break
    assert seen == everything
    assert pages == 4  # 5 + 5 + 5 + 1


def test_pages_of_one_model(settings, warehouse, registered):
    first = list_versions(warehouse, settings, ENV, page_size=5, model_name="beta")
    rest = list_versions(
        warehouse, settings, ENV, page_size=5, page_token=first.next_token, model_name="beta"
    )
    assert _keys(first.entries + rest.entries) == [("beta", v) for v in range(1, 10)]
    assert rest.next_token is None


@pytest.mark.parametrize("token", ["nonsense!", "WyJ4Il0", "WzEsMl0"])
def test_a_forged_page_token_is_refused(settings, warehouse, registered, token):
    with pytest.raises(InvalidRequest, match="page_token"):
        list_versions(warehouse, settings, ENV, page_token=token)


def test_an_empty_registry_has_one_empty_page(settings, warehouse):
    page = list_versions(warehouse, settings, ENV)
    assert (page.entries, page.next_token) == ([], None)


def test_resync_sends_nothing_and_changes_no_row(settings, warehouse, registered, monkeypatch):
    table = registry_table(settings, ENV)
    before = warehouse.read_table(table).to_pylist()
    merged = []
    original = type(warehouse).merge
    monkeypatch.setattr(
        type(warehouse), "merge", lambda self, *a, **k: merged.append(a) or original(self, *a, **k)
    )
    result = sync_registry(warehouse, registered, settings, ENV)
    assert (result.scanned, result.inserted, result.updated) == (16, 0, 0)
    assert merged == []  # not even an empty merge: nothing was sent
    assert warehouse.read_table(table).to_pylist() == before


def test_get_models_pages_over_http(settings, warehouse, registered, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    app = create_app({"SETTINGS": settings.model_copy(update={"redis_url": redis_url})})
    with serve_wsgi(app) as url:
        first = requests.get(f"{url}/models", params={"env": ENV, "page_size": 10}).json()
        second = requests.get(
            f"{url}/models",
            params={"env": ENV, "page_size": 10, "page_token": first["next_page_token"]},
        ).json()
        one = requests.get(f"{url}/models/beta", params={"env": ENV}).json()
        bad = requests.get(f"{url}/models", params={"env": ENV, "page_token": "forged"})
        big = requests.get(f"{url}/models", params={"env": ENV, "page_size": 5000})
    names = [(m["model_name"], m["model_version"]) for m in first["models"] + second["models"]]
    assert len(first["models"]) == 10 and second["next_page_token"] is None
    assert names == [(n, f"v{v}") for n, count in VERSIONS.items() for v in range(1, count + 1)]
    assert [v["model_version"] for v in one["versions"]] == [f"v{v}" for v in range(1, 10)]
    assert bad.status_code == 400 and "page_token" in bad.json()["detail"]
    assert big.status_code == 400 and "page_size" in big.text
