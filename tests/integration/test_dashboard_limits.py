"""Dashboard forms spend the same budget as the API and wait through the same capped pool
(attacks: 40 registry syncs from dashboard forms in a minute all ran while the API gave 429;
40 alias moves with the worker stopped held 40 request threads and /health took 8 s). Over
HTTP against the real app and Redis, with no worker running."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.integration.trust_support import bearer, serve_api
from tests.services import wait_for
from web.credentials import token_hash
from web.ui.guard import SESSION_COOKIE
from web.ui.sessions import SessionStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ADMIN = "dashboard-admin-token-01"
OPS = "dashboard-ops-token-0123"
PRINCIPALS = [{"name": "ops", "token_sha256": [token_hash(OPS)], "scopes": ["registry"]}]


def _serve(tmp_path, demo_home, redis_url, **env):
    return serve_api(
        tmp_path / "home",
        demo_home,
        redis_url,
        MLSYS_API_TOKENS=ADMIN,
        MLSYS_API_PRINCIPALS=json.dumps(PRINCIPALS),
        **env,
    )


def _browser(api, token: str) -> tuple[requests.Session, str]:
    cookie, session = SessionStore.from_url(api.settings.redis_url).create(token)
    browser = requests.Session()
    browser.cookies.set(SESSION_COOKIE, cookie, path="/ui")
    return browser, session.csrf


def test_dashboard_syncs_spend_the_api_budget(tmp_path, demo_home, redis_url, redis_client):
    with _serve(tmp_path, demo_home, redis_url, MLSYS_SUBMIT_RATE_LIMIT="3/minute") as api:
        browser, csrf = _browser(api, OPS)
        form = {"csrf_token": csrf, "env": "dev"}
        synced = [
            browser.post(f"{api.url}/ui/models/sync", data=form, allow_redirects=False)
            for _ in range(2)
        ]
        assert [r.status_code for r in synced] == [303, 303]
        # The API and the dashboard draw on one budget per principal.
        api_sync = api.call("POST", "/model-registry", json={"env": "dev"}, headers=bearer(OPS))
        assert api_sync.status_code == 202

        over = browser.post(f"{api.url}/ui/models/sync", data=form, allow_redirects=False)

        assert over.status_code == 429
        assert len(api.job_records()) == 3


def test_dashboard_alias_moves_wait_in_the_capped_pool(
    tmp_path, demo_home, redis_url, redis_client
):
    with _serve(
        tmp_path,
        demo_home,
        redis_url,
        MLSYS_MAX_WAITING_REQUESTS="2",
        MLSYS_ALIAS_WAIT_SECONDS="60",
    ) as api:
        browser, csrf = _browser(api, OPS)
        form = {"csrf_token": csrf, "env": "dev", "alias": "champion", "version": "v1"}

        def move() -> requests.Response:
            return browser.post(
                f"{api.url}/ui/models/titanic-survival/aliases", data=form, allow_redirects=False
            )

        with ThreadPoolExecutor(6) as pool:
            moves = [pool.submit(move) for _ in range(6)]
            # Two wait for a worker that never comes; the others are told at once.
            wait_for(lambda: sum(f.done() for f in moves) >= 4, timeout=60, what="answers")
            assert not all(f.done() for f in moves)
            assert api.call("GET", "/health").ok
            told = [f.result() for f in moves if f.done()]
            assert all(r.status_code == 503 for r in told)
            assert all(re.search(r"still queued or running", r.text) for r in told)
            # Cancelling the queued moves releases the two that wait.
            for job in api.call("GET", "/jobs", headers=bearer(ADMIN)).json()["jobs"]:
                api.call("DELETE", f"/jobs/{job['job_id']}", headers=bearer(ADMIN))
            answers = [f.result() for f in moves]
        # No move was made: each form says so (none redirects as if it had worked).
        assert all(r.status_code >= 400 for r in answers), [r.status_code for r in answers]
