"""The tests run the same in a checkout where `bash scripts/local-env` wrote a `.env` (auth on,
Redis elsewhere) and in a shell that exports it: the servers they start get an explicit
environment (tests/services.py `isolated_env`) and read no dotenv file."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from mlsys.settings import Settings
from tests.services import NO_REDIS, free_port, gunicorn_command, isolated_env, process, wait_for

pytestmark = pytest.mark.integration

HOSTILE = {
    "MLSYS_API_TOKENS": "hostile-token",
    "MLSYS_API_TOKEN": "hostile-token",
    "REDIS_URL": "redis://:nope@127.0.0.1:1/0",
    "MLSYS_API_URL": "http://127.0.0.1:1",
    "MLSYS_ENVIRONMENTS": "qa",
    "MLSYS_HOME": "/nonexistent/mlsys-home",
}


@pytest.fixture
def hostile_checkout(tmp_path, monkeypatch) -> Path:
    """A working folder whose `.env` turns auth on and points everything elsewhere."""
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in HOSTILE.items()))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_settings_in_the_test_process_ignore_the_dotenv_file(hostile_checkout):
    settings = Settings()

    assert settings.api_tokens == [] and settings.api_token is None
    assert settings.redis_url == NO_REDIS  # the suite's "name your own Redis", not the .env's
    assert settings.environments == ["dev", "staging", "prod"]
    # ... while MLSYS_ENV_FILE still names a file to read when asked to (notebooks do).
    named = Settings(_env_file=hostile_checkout / ".env")
    assert named.environments == ["qa"]


def test_a_server_started_by_a_test_ignores_the_dotenv_file(hostile_checkout, redis_url):
    port = free_port()
    env = isolated_env(REDIS_URL=redis_url, MLSYS_HOME=str(hostile_checkout / "home"))
    gunicorn = gunicorn_command(port, workers=1)
    url = f"http://127.0.0.1:{port}"
    with process(gunicorn, env, hostile_checkout, hostile_checkout / "gunicorn.log"):
        wait_for(lambda: _answers(url), timeout=60, what="gunicorn")
        jobs = requests.get(f"{url}/jobs", timeout=10)
        ready = requests.get(f"{url}/ready", timeout=10)

    assert jobs.status_code == 200, jobs.text  # auth off, as the test asked
    assert ready.status_code == 200, ready.text  # the test's Redis, not the .env's


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
