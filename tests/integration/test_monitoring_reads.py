"""A model version's monitoring history shows a caller only the jobs it may read (#attack:
every signed-in caller, a registry-only one too, got every principal's job statistics, raw
unseen category values included). Over HTTP, against the real app, Redis and DuckDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from mlsys.jobs import JobKind, JobStore, NewJob, keys
from mlsys.monitoring.stats import KEYS, SCHEMA, stats_table
from mlsys.warehouse import open_warehouse
from tests.integration.trust_support import bearer, serve_api
from web.credentials import token_hash
from web.ui.guard import SESSION_COOKIE
from web.ui.sessions import SessionStore

pytestmark = pytest.mark.integration

ADMIN = "monitoring-admin-token"
TOKENS = {"alice": "monitoring-alice-token", "bob": "monitoring-bob-token"}
REGISTRY = "monitoring-registry-token"
PRINCIPALS = [
    *(
        {"name": n, "token_sha256": [token_hash(t)], "scopes": ["predict"]}
        for n, t in TOKENS.items()
    ),
    {"name": "ops", "token_sha256": [token_hash(REGISTRY)], "scopes": ["registry"]},
]
PATH = "/models/titanic-survival/versions/v1/monitoring"


def _stats(job_id: str, secret: str, principal: str | None = None) -> dict:
    return {
        "principal": principal,
        "job_id": job_id,
        "model_name": "titanic-survival",
        "model_version": 1,
        "feature": "Embarked",
        "kind": "category",
        "status": "warn",
        "rows": 10,
        "null_rate": 0.0,
        "null_rate_reference": 0.0,
        "null_rate_change": 0.0,
        "psi": 0.2,
        "unseen_rate": 0.1,
        "unseen_examples": json.dumps([secret]),
        "mean": None,
        "profile": "{}",
        "computed_at": datetime.now(UTC),
    }


@pytest.fixture
def api(tmp_path, demo_home, redis_url, redis_client):
    with serve_api(
        tmp_path / "home",
        demo_home,
        redis_url,
        MLSYS_API_TOKENS=ADMIN,
        MLSYS_API_PRINCIPALS=json.dumps(PRINCIPALS),
    ) as api:
        jobs = JobStore.from_settings(api.settings)
        job_ids = {}
        for name in TOKENS:
            job, _ = jobs.create(NewJob(JobKind.PREDICT, {"env": "dev"}, name))
            job_ids[name] = job.job_id
        warehouse = open_warehouse(settings=api.settings)
        rows = [_stats(job_ids[name], f"only-in-{name}s-table") for name in TOKENS]
        warehouse.merge(stats_table(api.settings, "dev"), pa.Table.from_pylist(rows, SCHEMA), KEYS)
        warehouse.close()
        api.job_ids = job_ids
        yield api


def _seen(api, token: str) -> list[str]:
    response = api.call("GET", PATH, params={"env": "dev"}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return [job["job_id"] for job in response.json()["jobs"]]


def test_a_principal_reads_the_monitoring_of_its_own_jobs_only(api):
    response = api.call("GET", PATH, params={"env": "dev"}, headers=bearer(TOKENS["bob"]))

    assert [job["job_id"] for job in response.json()["jobs"]] == [api.job_ids["bob"]]
    assert "only-in-alices-table" not in response.text
    assert _seen(api, TOKENS["alice"]) == [api.job_ids["alice"]]


def test_a_registry_only_principal_reads_no_job_statistics(api):
    assert _seen(api, REGISTRY) == []


def test_an_admin_reads_every_jobs_monitoring(api):
    # The demo's own run is there too: it has statistics and no job record.
    assert set(api.job_ids.values()) < set(_seen(api, ADMIN))


def _expire(api, *job_ids: str) -> None:
    """What Redis does to a job record after its retention (MLSYS_JOB_TTL)."""
    JobStore.from_settings(api.settings).client.delete(*(keys.job(j) for j in job_ids))


def test_statistics_that_name_their_owner_stay_theirs_after_the_job_record_expires(api):
    warehouse = open_warehouse(settings=api.settings)
    rows = [
        _stats(api.job_ids[name], f"owned-by-{name}", principal=name) for name in ("alice", "bob")
    ]
    warehouse.merge(stats_table(api.settings, "dev"), pa.Table.from_pylist(rows, SCHEMA), KEYS)
    warehouse.close()
    _expire(api, *api.job_ids.values())

    assert _seen(api, TOKENS["alice"]) == [api.job_ids["alice"]]
    assert _seen(api, TOKENS["bob"]) == [api.job_ids["bob"]]
    bobs = api.call("GET", PATH, params={"env": "dev"}, headers=bearer(TOKENS["bob"]))
    assert "owned-by-alice" not in bobs.text
    # Who owns a row decides who reads it; it is not part of the answer, an admin's included.
    admins = api.call("GET", PATH, params={"env": "dev"}, headers=bearer(ADMIN)).json()
    assert all("principal" not in f for job in admins["jobs"] for f in job["features"])


def test_statistics_written_before_they_named_an_owner_follow_the_job_record(api):
    _expire(api, api.job_ids["alice"])

    assert _seen(api, TOKENS["alice"]) == []  # the record is gone: no one's but an admin's
    assert _seen(api, TOKENS["bob"]) == [api.job_ids["bob"]]
    assert api.job_ids["alice"] in _seen(api, ADMIN)


def _version_page(api, token: str) -> str:
    cookie, _ = SessionStore.from_url(api.settings.redis_url).create(token)
    page = api.call(
        "GET",
        "/ui/models/titanic-survival/versions/v1",
        params={"env": "dev"},
        cookies={SESSION_COOKIE: cookie},
    )
    assert page.status_code == 200, page.text[:500]
    return page.text


def test_the_dashboards_drift_chart_shows_the_callers_jobs_only(api):
    bob, admin = _version_page(api, TOKENS["bob"]), _version_page(api, ADMIN)

    assert api.job_ids["bob"][:8] in bob and api.job_ids["alice"][:8] not in bob
    assert api.job_ids["alice"][:8] in admin and api.job_ids["bob"][:8] in admin
