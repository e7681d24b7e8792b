"""Configuration dumps mask every URL that carries credentials (attack: Flower's worker page
and /api/workers showed `redbeat_redis_url` with the Redis password in clear; only
broker_url was masked). A real worker on a Redis that asks for a password, inspected the way
Flower inspects it."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
import requests

from mlsys.settings import Settings
from tests.services import celery_worker, free_port, isolated_env, process, repo_root, wait_for
from worker.app import create_celery
from worker.conf_dump import mask_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PASSWORD = "s3cret-" + uuid.uuid4().hex  # pragma: allowlist secret


@pytest.fixture
def protected_url(redis_url, redis_client):
    """The session's Redis through a user that needs PASSWORD."""
    user = "dump-" + uuid.uuid4().hex[:8]
    redis_client.execute_command("ACL", "SETUSER", user, "on", f">{PASSWORD}", "~*", "&*", "+@all")
    try:
        yield redis_url.replace("redis://", f"redis://{user}:{PASSWORD}@", 1)
    finally:
        redis_client.execute_command("ACL", "DELUSER", user)


def test_a_workers_configuration_shows_no_password(tmp_path, protected_url):
    env = {**isolated_env(), "REDIS_URL": protected_url, "MLSYS_HOME": str(tmp_path / "home")}
    settings = Settings(_env_file=None, REDIS_URL=protected_url, MLSYS_HOME=str(tmp_path / "home"))
    app = create_celery(settings)
    try:
        with celery_worker(env, repo_root(), name="dumped"):
            inspect = app.control.inspect(timeout=2)
            conf = wait_for(inspect.conf, timeout=60, what="the worker to answer")
            report = inspect.report()
    finally:
        app.close()
    dumped = json.dumps([conf, report])
    assert "redbeat_redis_url" in dumped and "broker_url" in dumped
    assert PASSWORD not in dumped


def test_flowers_worker_api_shows_no_password(tmp_path, protected_url):
    port = free_port()
    login = ("ops", "flower-pass-" + uuid.uuid4().hex[:8])
    env = {
        **isolated_env(),
        "REDIS_URL": protected_url,
        "MLSYS_HOME": str(tmp_path / "home"),
        "FLOWER_PORT": str(port),
        "FLOWER_BASIC_AUTH": ":".join(login),
    }
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # celery of this venv
    start = ["bash", str(repo_root() / "docker" / "start"), "flower"]
    url = f"http://127.0.0.1:{port}/api/workers?refresh=1"

    def workers() -> str | None:
        try:
            answer = requests.get(url, auth=login, timeout=10)
        except requests.ConnectionError:
            return None
        return answer.text if "redbeat_redis_url" in answer.text else None

    with (
        celery_worker(env, repo_root(), name="flowered"),
        process(start, env, repo_root(), tmp_path / "flower.log"),
    ):
        shown = wait_for(workers, timeout=90, interval=1, what="flower to show the worker")
    assert "broker_url" in shown
    assert PASSWORD not in shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw-1@host:6379/0", "redis://********@host:6379/0"),
        ("rediss://user:pw-2@host:6380/1", "rediss://********@host:6380/1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        (
            "a=postgresql://u:pw-3@db/x; b=https://x.test",
            "a=postgresql://********@db/x; b=https://x.test",
        ),
    ],
)
def test_every_url_loses_its_credentials(url, shown):
    assert mask_url(url) == shown
