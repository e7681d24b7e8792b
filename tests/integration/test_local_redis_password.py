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
    first_run = subprocess.run(
        ["bash", "scripts/local-env"], cwd=checkout, check=True, capture_output=True, text=True
    )
    first = _dotenv(checkout / ".env")
    again = subprocess.run(
        ["bash", "scripts/local-env"], cwd=checkout, check=True, capture_output=True, text=True
    )

    assert _dotenv(checkout / ".env") == first
    assert len(first["REDIS_PASSWORD"]) >= 24
    port = int(first["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    assert first["REDIS_URL"] == f"redis://:{first['REDIS_PASSWORD']}@localhost:{port}/0"
    assert port >= 6380  # never the port a system Redis listens on
    assert first["MLSYS_API_TOKEN"] == first["MLSYS_API_TOKENS"]
    assert first["MLSYS_API_URL"] == f"http://localhost:{first['MLSYS_WEB_PORT']}"
    assert first["FLOWER_BASIC_AUTH"].startswith("mlsys:") and first["FLOWER_PORT"] == "5555"
    assert (checkout / ".env").stat().st_mode & 0o077 == 0
    # stdout is only what `eval "$(bash scripts/local-env)"` should run; the login is told too.
    exports = [
        f"export MLSYS_API_URL={first['MLSYS_API_URL']}",
        f"export MLSYS_API_TOKEN={first['MLSYS_API_TOKEN']}",
    ]
    assert first_run.stdout.splitlines() == exports == again.stdout.splitlines()
    assert first["FLOWER_BASIC_AUTH"] in again.stderr


def test_local_env_takes_the_ports_it_is_given(checkout):
    ports = {"REDIS_PORT": "6391", "MLSYS_WEB_PORT": "8123", "FLOWER_PORT": "5666"}
    subprocess.run(
        ["bash", "scripts/local-env"], cwd=checkout, check=True, capture_output=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", **ports},
    )  # fmt: skip
    written = _dotenv(checkout / ".env")

    assert written["REDIS_URL"].endswith("@localhost:6391/0")
    assert written["MLSYS_API_URL"] == "http://localhost:8123"
    assert written["FLOWER_PORT"] == "5666"


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


def _redis_server(port: int, *config: str) -> subprocess.Popen:
    """A redis-server that is not the stack's: passwordless, or with another password."""
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", *config],
        stdout=subprocess.DEVNULL,
    )
    wait_for(lambda: _answers(port), what="redis-server")
    return proc


def _answers(port: int) -> bool:
    try:
        redis.Redis(host="127.0.0.1", port=port).ping()
    except (redis.AuthenticationError, redis.ResponseError):  # NOAUTH: it listens
        return True
    except redis.ConnectionError:
        return False
    return True


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
@pytest.mark.parametrize(
    ("config", "why"),
    [
        ((), "answers without a password"),
        (("--requirepass", "someone-elses-pass"), "does not accept this stack's password"),
    ],
)
def test_local_redis_never_adopts_a_redis_that_is_not_the_stacks(checkout, config, why):
    """A system Redis without a password (as `apt install redis-server` leaves one on 6379),
    or one with another password, is refused, and nothing is written to it."""
    port = free_port()
    server = _redis_server(port, *config)
    try:
        result = subprocess.run(
            ["bash", "scripts/local-redis"],
            cwd=checkout,
            env={
                "PATH": "/usr/bin:/bin:/usr/local/bin",
                "REDIS_URL": f"redis://:local-pass-123@localhost:{port}/0",
                "MLSYS_HOME": str(checkout),
            },
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        assert why in result.stderr and "REDIS_URL" in result.stderr
        if not config:
            assert redis.Redis(host="127.0.0.1", port=port).dbsize() == 0
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_local_redis_uses_a_running_redis_that_asks_for_its_password(checkout):
    port = free_port()
    server = _redis_server(port, "--requirepass", "local-pass-123")
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "REDIS_URL": f"redis://:local-pass-123@localhost:{port}/0",
        "MLSYS_HOME": str(checkout),
    }
    try:
        with process(["bash", "scripts/local-redis"], env, checkout, checkout / "r.log") as proc:
            wait_for(lambda: "using the Redis" in (checkout / "r.log").read_text(), what="log")
            assert proc.poll() is None  # it stays up for honcho, without a second server
    finally:
        server.terminate()
        server.wait(10)
