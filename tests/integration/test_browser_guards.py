"""A web page open in the developer's browser cannot drive the API (#11 §5).

Attacks: with auth off (the local default) an `<img src=http://127.0.0.1:8000/predict?...>` on
any site started jobs, and DNS rebinding reached the API under a foreign Host name. Now a foreign
Host is refused on every request, cross-site requests are refused on every state-changing
route, the job-starting GET aliases need authentication (or an explicit setting), and a
container refuses to start an API without tokens.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.trust_support import (
    PASSENGERS,
    PROJECT,
    assert_problem,
    serve_api,
)
from tests.services import free_port, isolated_env, repo_root
from web import create_app
from web.auth import AuthRequired

pytestmark = pytest.mark.integration

TOKEN = "browser-guard-token-0123"
QUERY = {
    "env": "dev",
    "input_table": PASSENGERS,
    "output_table": f"{PROJECT}.titanic.scored",
    "model_name": "titanic-survival",
    "model_version": "v1",
    "id_columns": "PassengerId",
}
BODY = {**QUERY, "id_columns": ["PassengerId"]}
#: What a browser sends for an <img> or a form post from another site.
CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
]


@pytest.fixture
def open_api(tmp_path, demo_home, redis_url, redis_client):
    """Authentication off: the local default."""
    with serve_api(tmp_path / "home", demo_home, redis_url) as api:
        yield api


@pytest.fixture
def api(tmp_path, demo_home, redis_url, redis_client):
    with serve_api(tmp_path / "home", demo_home, redis_url, TOKEN, MLSYS_API_TOKENS=TOKEN) as api:
        yield api


def test_a_foreign_host_is_refused_on_every_request(open_api):
    for method, path, kwargs in (
        ("GET", "/health", {}),
        ("GET", "/jobs", {}),
        ("POST", "/predict", {"json": BODY}),
    ):
        response = open_api.call(method, path, headers={"Host": "rebound.evil.example"}, **kwargs)
        assert_problem(response, 400, "MLSYS_ALLOWED_HOSTS")
    assert open_api.queued() == [] and open_api.job_records() == []


def test_with_auth_off_the_get_aliases_do_not_start_jobs(open_api):
    predict = open_api.call("GET", "/predict", params=QUERY)
    sync = open_api.call("GET", "/model-registry", params={"env": "dev"})

    for response in (predict, sync):
        assert_problem(response, 403, "MLSYS_OPEN_GET_SUBMITS")
    assert open_api.queued() == [] and open_api.job_records() == []
    # POST still works locally without a token.
    assert open_api.call("POST", "/predict", json=BODY).status_code == 202


def test_the_get_aliases_can_be_opened_explicitly(tmp_path, demo_home, redis_url, redis_client):
    with serve_api(tmp_path / "home", demo_home, redis_url, MLSYS_OPEN_GET_SUBMITS="true") as api:
        assert api.call("GET", "/predict", params=QUERY).status_code == 202
        # ... but still never from another site.
        cross = api.call("GET", "/predict", params=QUERY, headers=CROSS_SITE[0])
        assert_problem(cross, 403, "another site")
        assert len(api.queued()) == 1


@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda h: ",".join(h.values()))
def test_cross_site_requests_never_change_state(api, headers):
    calls = [
        ("POST", "/predict", {"json": BODY}),
        ("GET", "/predict", {"params": QUERY}),
        ("POST", "/model-registry", {"json": {"env": "dev"}}),
        ("GET", "/model-registry", {"params": {"env": "dev"}}),
        (
            "PUT",
            "/models/titanic-survival/aliases/champion",
            {"json": {"env": "dev", "version": "v1"}},
        ),
    ]
    for method, path, kwargs in calls:
        assert_problem(api.call(method, path, headers=headers, **kwargs), 403, "another site")
    assert api.queued() == [] and api.job_records() == []
    # Reading is fine from anywhere that holds a token.
    assert api.call("GET", "/jobs", headers=headers).status_code == 200


def test_same_origin_browser_requests_are_fine(api):
    headers = {"Origin": api.url, "Sec-Fetch-Site": "same-origin"}

    assert api.call("POST", "/predict", json=BODY, headers=headers).status_code == 202


def test_required_auth_refuses_to_build_an_open_api(settings):
    with pytest.raises(AuthRequired, match="refusing to start"):
        create_app({"SETTINGS": settings.model_copy(update={"require_auth": True})})


def test_the_container_entry_point_fails_closed_without_tokens(tmp_path):
    env = isolated_env()
    env.update(MLSYS_HOME=str(tmp_path / "home"), PORT=str(free_port()), WEB_CONCURRENCY="1")
    done = subprocess.run(
        ["bash", str(repo_root() / "docker" / "start"), "web"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "MLSYS_REQUIRE_AUTH is set" in done.stderr
