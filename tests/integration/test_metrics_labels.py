"""/metrics labels come from closed sets: invented HTTP methods cannot add series (attack:
2,000 unauthenticated requests with made-up methods grew /metrics from 48 KB to 3.6 MB)."""

from __future__ import annotations

import pytest
import requests

from tests.integration.trust_support import bearer, serve_api

pytestmark = pytest.mark.integration

TOKEN = "metrics-admin-token-0123"


@pytest.fixture
def api(tmp_path, demo_home, redis_url, redis_client):
    with serve_api(tmp_path / "home", demo_home, redis_url, MLSYS_API_TOKENS=TOKEN) as api:
        yield api


def _series(api) -> list[str]:
    text = api.call("GET", "/metrics", headers=bearer(TOKEN)).text
    return [line for line in text.splitlines() if line.startswith("mlsys_http_requests_total{")]


def test_invented_methods_do_not_add_series(api):
    requests.request("FROB0", api.url + "/jobs", timeout=10)
    before = len(_series(api))
    for i in range(1, 60):
        assert requests.request(f"FROB{i}", api.url + f"/x{i}", timeout=10).status_code in (
            400,
            401,
            404,
            405,
        )
        requests.request(f"FROB{i}", api.url + "/jobs", timeout=10)

    series = _series(api)
    assert len(series) <= before + 2, series  # the <unmatched> route once, nothing per method
    assert not any("FROB" in line for line in series)
    assert any('method="other"' in line for line in series)
