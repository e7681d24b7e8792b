"""The README's local stack in five commands, as a newcomer types them: `bash scripts/local-env`,
`honcho start` over the Procfile, the printed URL and token, a job submitted and polled over
HTTP, the job on the dashboard after signing in, Flower behind the printed login."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.services import free_port, isolated_env, process, repo_root, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]
BIN = Path(sys.executable).parent
PREDICT = {
    "env": "dev",
    "input_table": "mlsys-local.titanic.passengers",
    "output_table": "mlsys-local.titanic.predictions",
    "model_name": "titanic-survival",
    "model_version": "v1",
}


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The files the local stack runs from, in a folder of their own (its .env, its .mlsys)."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    (tmp_path / "scripts").mkdir()
    for name in ("local-env", "local-redis", "local-flower"):
        shutil.copy(repo_root() / "scripts" / name, tmp_path / "scripts" / name)
    shutil.copy(repo_root() / "Procfile", tmp_path / "Procfile")
    return tmp_path


def _dotenv(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_the_local_stack_in_five_commands(checkout):
    # The shell of someone who has not configured anything; the stack reads its own .env.
    shell = isolated_env(PATH=f"{BIN}:{isolated_env().get('PATH', '/usr/bin:/bin')}")
    del shell["MLSYS_ENV_FILE"]
    ports = {
        "REDIS_PORT": str(free_port()),
        "MLSYS_WEB_PORT": str(free_port()),
        "FLOWER_PORT": str(free_port()),
    }
    demo = subprocess.run(
        [str(BIN / "mlsys"), "demo", "--rows", "3000"], cwd=checkout, env=shell,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr

    # 1. local-env: the settings once, the exports on stdout.
    written = subprocess.run(
        ["bash", "scripts/local-env"], cwd=checkout, env={**shell, **ports},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    exports = dict(re.findall(r"^export (\w+)=(.*)$", written.stdout, re.M))
    url, token = exports["MLSYS_API_URL"], exports["MLSYS_API_TOKEN"]
    flower_login = tuple(_dotenv(checkout / ".env")["FLOWER_BASIC_AUTH"].split(":", 1))
    assert url == f"http://localhost:{ports['MLSYS_WEB_PORT']}"
    assert ":".join(flower_login) in written.stderr  # the login is printed

    # 2. honcho start over the Procfile.
    log = checkout / "honcho.log"
    with process([str(BIN / "honcho"), "start"], shell, checkout, log):
        wait_for(lambda: _answers(f"{url}/health"), timeout=120, what=f"the API\n{_tail(log)}")
        auth = {"Authorization": f"Bearer {token}"}
        # 3-5. submit with the printed token, poll until it ends.
        assert requests.post(f"{url}/predict", json=PREDICT, timeout=10).status_code == 401
        job_id = requests.post(f"{url}/predict", json=PREDICT, headers=auth, timeout=30).json()[
            "job_id"
        ]
        job = wait_for(
            lambda: _ended(f"{url}/jobs/{job_id}", auth), timeout=180, what=f"job\n{_tail(log)}"
        )
        # The dashboard, signed in with the token, lists the job.
        browser = requests.Session()
        form = browser.get(f"{url}/ui/signin", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        signed_in = browser.post(
            f"{url}/ui/signin",
            data={"csrf_token": csrf, "next": "/ui/jobs", "token": token},
            headers={"Origin": url, "Sec-Fetch-Site": "same-origin"},
            timeout=10,
        )
        jobs_page = browser.get(f"{url}/ui/jobs", timeout=10)
        flower = f"http://127.0.0.1:{ports['FLOWER_PORT']}/"
        wait_for(lambda: _answers(flower, auth=flower_login), timeout=60, what="flower")
        anonymous_flower = requests.get(flower, timeout=10).status_code

    assert job["state"] == "succeeded", job
    assert job["progress"]["rows_done"] == 3000
    assert signed_in.ok and job_id in jobs_page.text
    assert anonymous_flower == 401
    redis_line = re.search(
        r"local-redis: starting redis-server on localhost:(\d+)", log.read_text()
    )
    assert redis_line and redis_line.group(1) == ports["REDIS_PORT"]


def _answers(url: str, **kwargs) -> bool:
    try:
        return requests.get(url, timeout=3, **kwargs).status_code == 200
    except requests.ConnectionError:
        return False


def _ended(url: str, headers: dict) -> dict | None:
    job = requests.get(url, headers=headers, timeout=10).json()
    return job if job["state"] in ("succeeded", "failed", "cancelled") else None


def _tail(log: Path) -> str:
    return "\n".join(log.read_text().splitlines()[-30:]) if log.exists() else ""
