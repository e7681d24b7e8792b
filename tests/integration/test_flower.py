"""Flower, started the way the image starts it (`docker/start flower`): never without a gate
(basic auth, or Cloud Run IAM where Cloud Run runs it), a wrong password gets nothing, and
behind a proxy that replaces the login with a Bearer token (`gcloud run services proxy`) only
the IAM gate lets anyone in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.services import free_port, isolated_env, process, repo_root, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

START = repo_root() / "docker" / "start"
LOGIN = ("ops", "s3cret-flower-pass")  # pragma: allowlist secret


def start_env(redis_url: str, home: Path, **extra: str) -> dict[str, str]:
    env = isolated_env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return {**env, "REDIS_URL": redis_url, "MLSYS_HOME": str(home), **extra}


@pytest.mark.parametrize("auth", [None, ""])
def test_start_refuses_flower_without_basic_auth(tmp_path, redis_url, auth):
    env = start_env(redis_url, tmp_path, FLOWER_PORT=str(free_port()))
    if auth is not None:
        env["FLOWER_BASIC_AUTH"] = auth

    result = subprocess.run(
        ["bash", str(START), "flower"], env=env, cwd=repo_root(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip

    assert result.returncode == 64, result.stderr
    assert "FLOWER_BASIC_AUTH is empty" in result.stderr
    assert "refusing to start flower without auth" in result.stderr


def test_flower_answers_only_the_configured_login(tmp_path, redis_url):
    port = free_port()
    env = start_env(redis_url, tmp_path, FLOWER_PORT=str(port), FLOWER_BASIC_AUTH=":".join(LOGIN))
    url = f"http://127.0.0.1:{port}/"

    def answering() -> list[requests.Response]:
        try:
            return [requests.get(url, timeout=2)]  # in a list: a 401 response is falsy
        except requests.ConnectionError:
            return []

    with process(["bash", str(START), "flower"], env, repo_root(), tmp_path / "flower.log"):
        (anonymous,) = wait_for(answering, timeout=60, what="flower to listen")
        wrong = requests.get(url, auth=(LOGIN[0], "not-the-password"), timeout=5)
        other_user = requests.get(url, auth=("admin", LOGIN[1]), timeout=5)
        right = requests.get(url, auth=LOGIN, timeout=5)
        api = requests.get(url + "api/workers", auth=(LOGIN[0], "wrong"), timeout=5)

    for refused in (anonymous, wrong, other_user, api):
        assert refused.status_code == 401, refused.text[:200]
        assert "workers" not in refused.text.lower()
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert right.status_code == 200 and "Flower" in right.text


def test_start_refuses_the_iam_gate_outside_cloud_run(tmp_path, redis_url):
    env = start_env(redis_url, tmp_path, MLSYS_FLOWER_GATE="cloud-run-iam")
    env.pop("K_SERVICE", None)

    result = subprocess.run(
        ["bash", str(START), "flower"], env=env, cwd=repo_root(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip

    assert result.returncode == 64, result.stderr
    assert "outside Cloud Run" in result.stderr


@pytest.mark.parametrize(
    ("gate", "status"),
    [("basic", 401), ("cloud-run-iam", 200)],
    ids=["basic-auth-locks-everyone-out", "iam-gate-opens"],
)
def test_flower_behind_the_bearer_replacing_proxy(tmp_path, redis_url, gate, status):
    """`gcloud run services proxy` replaces the browser's login with a Bearer token: Flower's
    basic auth then refuses everyone; with Cloud Run IAM as the gate, Flower answers (its API
    stays closed without a login of its own)."""
    port, proxy_port = free_port(), free_port()
    env = start_env(
        redis_url, tmp_path, FLOWER_PORT=str(port), FLOWER_BASIC_AUTH=":".join(LOGIN),
        MLSYS_FLOWER_GATE=gate, K_SERVICE="mlsys-flower-dev",
    )  # fmt: skip
    proxy = [
        sys.executable, str(repo_root() / "docker" / "cloudrun-proxy.py"),
        "--listen", f"127.0.0.1:{proxy_port}", "--upstream", f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{proxy_port}/"

    def answering() -> list[requests.Response]:
        try:
            answer = requests.get(url, auth=LOGIN, timeout=2)
            return [answer] if answer.status_code != 502 else []
        except requests.ConnectionError:
            return []

    with (
        process(["bash", str(START), "flower"], env, repo_root(), tmp_path / "flower.log"),
        process(proxy, env, repo_root(), tmp_path / "proxy.log"),
    ):
        (page,) = wait_for(answering, timeout=60, what="flower behind the proxy")
        api = requests.get(url + "api/workers", auth=LOGIN, timeout=5)

    assert page.status_code == status, page.text[:200]
    assert ("Flower" in page.text) == (status == 200)
    assert api.status_code == 401
