"""The local stack's Redis asks for a password (#11 §7): Redis holds the job records and the
broker, so whoever can write to it can make workers run jobs."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import redis

from tests.services import free_port, process, repo_root, wait_for

pytestmark = pytest.mark.integration


def _dotenv(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture
def checkout(tmp_path):
    """A copy of the scripts, so local-env writes its .env here, not in the repository."""
    (tmp_path / "scripts").mkdir()
    for name in ("local-env", "local-redis"):
        shutil.copy(repo_root() / "scripts" / name, tmp_path / "scripts" / name)
    return tmp_path


def test_local_env_generates_secrets_once(checkout):
    subprocess.run(["bash", "scripts/local-env"], cwd=checkout, check=True, capture_output=True)
    first = _dotenv(checkout / ".env")
    subprocess.run(["bash", "scripts/local-env"], cwd=checkout, check=True, capture_output=True)

    assert _dotenv(checkout / ".env") == first
    assert len(first["REDIS_PASSWORD"]) >= 24
    assert first["REDIS_URL"] == f"redis://:{first['REDIS_PASSWORD']}@localhost:6379/0"
    assert first["MLSYS_API_TOKEN"] == first["MLSYS_API_TOKENS"]
    assert (checkout / ".env").stat().st_mode & 0o077 == 0


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_local_redis_requires_the_password(checkout):
    port = free_port()
    url = f"redis://:local-pass-123@127.0.0.1:{port}/0"
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "REDIS_URL": url, "MLSYS_HOME": str(checkout)}
    with process(["bash", "scripts/local-redis"], env, checkout, checkout / "redis.log") as proc:
        authed = redis.Redis.from_url(url)
        wait_for(lambda: _pings(authed), what="local redis")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port).ping()
        assert (
            "local-pass-123"
            not in subprocess.run(
                ["ps", "-o", "args=", "-p", str(proc.pid)], capture_output=True, text=True
            ).stdout
        )

    without = subprocess.run(
        ["bash", "scripts/local-redis"],
        cwd=checkout,
        env={**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert without.returncode == 1 and "scripts/local-env" in without.stderr


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
