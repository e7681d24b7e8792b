"""Property-based run of the API against its own OpenAPI document (schemathesis).

Every operation of the running app is called over HTTP, with auth on, with generated valid
and invalid input: no input may cause a 5xx, and every response must match the documented
status codes, media types, headers and schemas.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mlsys.demo import run_demo
from mlsys.settings import Settings
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse
from tests.services import serve_wsgi
from web import create_app
from web.openapi import documented_routes
from worker.app import create_celery

pytestmark = pytest.mark.integration

TOKEN = "schemathesis-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# schemathesis' own pytest loader (`from_fixture`) breaks on pytest 9 (it sets the private
# `Function._nodeid`), so operations are parametrized here and driven with `as_strategy`.
OPERATIONS = sorted(
    (method.upper(), path)
    for path, method, _ in documented_routes(create_app({"SETTINGS": Settings(_env_file=None)}))
)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, redis_url) -> Iterator[schemathesis.schemas.BaseSchema]:
    """The running app's own /openapi.json, over a demo home and the session's Redis."""
    home = tmp_path_factory.mktemp("schemathesis") / "home"
    # No worker runs here: an alias move answers 202 with its queued job at once.
    config = Settings(
        _env_file=None,
        MLSYS_HOME=str(home),
        REDIS_URL=redis_url,
        MLSYS_API_TOKENS=TOKEN,
        MLSYS_SYNC_WAIT_SECONDS="0",  # no worker: the GET aliases answer 202 at once
        MLSYS_ALIAS_WAIT_SECONDS=0,
    )
    run_demo(
        open_warehouse(settings=config),
        open_store(settings=config),
        config,
        rows=2000,
        say=lambda *_: None,
    )
    celery = create_celery(config)
    app = create_app({"SETTINGS": config, "CELERY_APP": celery})
    with serve_wsgi(app) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json", headers=AUTH)
    celery.close()
    # Hundreds of queued jobs no worker will run: leave the session's Redis clean.
    redis.Redis.from_url(redis_url).flushdb()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_the_openapi_document(api_schema, method, path, mode):
    operation = api_schema[path][method]
    raw = operation.definition.raw
    if mode is GenerationMode.NEGATIVE and not (raw.get("parameters") or raw.get("requestBody")):
        pytest.skip("no input to make invalid")

    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        # Schema-valid is not always acceptable: a well-formed table id may name no table, and
        # the server says so with a 4xx. Everything else is checked, 5xx above all.
        case.call_and_validate(headers=AUTH, timeout=30, excluded_checks=[positive_data_acceptance])

    check()
