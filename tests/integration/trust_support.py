"""Set-up of the trust-boundary tests: the demo's home, the real app served over HTTP."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
import requests

from mlsys.demo import run_demo
from mlsys.ids import TableId
from mlsys.jobs import keys
from mlsys.settings import Settings
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse
from tests.services import serve_wsgi
from web import create_app
from worker.app import QUEUE, create_celery
from worker.fairness import redis_keys

PROJECT = "mlsys-local"
PASSENGERS = f"{PROJECT}.titanic.passengers"
REGISTRY = f"{PROJECT}.mlsys_dev.model_registry"


def build_demo_home(home: Path) -> Path:
    """An MLSYS_HOME with the demo's tables and `titanic-survival/v1` registered in dev."""
    settings = Settings(_env_file=None, MLSYS_HOME=str(home))
    run_demo(
        open_warehouse(settings=settings),
        open_store(settings=settings),
        settings,
        rows=500,
        say=lambda *_: None,
    )
    return home


@dataclass
class Api:
    """A served app, its settings and the Redis behind it (its registry rows, its queue)."""

    url: str
    settings: Settings
    redis: redis.Redis
    headers: dict[str, str]

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def queued(self) -> list[dict]:
        """Celery messages waiting in the broker's mlsys queue, oldest first."""
        return [
            json.loads(raw)
            for key in redis_keys(QUEUE, self.settings.fair_lanes)
            for raw in reversed(self.redis.lrange(key, 0, -1))
        ]

    def job_records(self) -> list[str]:
        """Keys of job records (not their units or progress hashes)."""
        return sorted(k for k in self.redis.scan_iter(keys.job("*")) if k.count(":") == 2)

    def registry_rows(self) -> list[dict]:
        warehouse = open_warehouse(settings=self.settings)
        return warehouse.read_table(TableId.parse(REGISTRY)).to_pylist()


@contextlib.contextmanager
def serve_api(
    home: Path, demo_home: Path, redis_url: str, token: str | None = None, **env: str
) -> Iterator[Api]:
    """The real app on a copy of the demo home, served on a free port."""
    shutil.copytree(demo_home, home, dirs_exist_ok=True)
    # No worker runs here: the seed's GET aliases answer 202 at once instead of waiting.
    env = {"MLSYS_SYNC_WAIT_SECONDS": "0", **env}
    settings = Settings(_env_file=None, MLSYS_HOME=str(home), REDIS_URL=redis_url, **env)
    celery = create_celery(settings)
    app = create_app({"SETTINGS": settings, "CELERY_APP": celery})
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    headers = bearer(token) if token else {}
    try:
        with serve_wsgi(app) as url:
            yield Api(url, settings, client, headers)
    finally:
        celery.close()


def bearer(token: str) -> dict[str, str]:
    """The headers that authenticate a request with `token`."""
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: requests.Response, status: int, *phrases: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    for phrase in phrases:
        assert phrase.lower() in problem["detail"].lower(), problem["detail"]
    return problem
