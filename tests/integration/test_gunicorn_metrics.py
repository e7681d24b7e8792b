"""/metrics under gunicorn with two worker processes counts the requests of both."""

from __future__ import annotations

import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.services import free_port, gunicorn_command, process, repo_root, wait_for

pytestmark = pytest.mark.integration

REQUESTS = 40
ROUNDS = 25
COUNTED = re.compile(
    r'^mlsys_http_requests_total\{method="GET",route="<unmatched>",status="404"\} (\S+)$', re.M
)


@pytest.mark.parametrize("named", [True, False], ids=["folder-named", "folder-default"])
def test_metrics_sum_every_gunicorn_worker(tmp_path, redis_url, named):
    """With the folder named (docker/start, compose, Cloud Run) or not (the config picks one)."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    # A previous run's file: counting it again would inflate every figure.
    (folder / "counter_999999.db").write_bytes(b"\0" * 16)
    port = free_port()
    env = {
        "PATH": str(Path(sys.executable).parent),
        "MLSYS_HOME": str(tmp_path / "home"),
        "REDIS_URL": redis_url,
        "MLSYS_ENV_FILE": "",  # no .env of the checkout
    }
    if named:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    args = gunicorn_command(port, workers=2, threads=1)
    url = f"http://127.0.0.1:{port}"
    with process(args, env, repo_root(), tmp_path / "gunicorn.log") as master:
        wait_for(lambda: _up(url), timeout=60, what="gunicorn")
        workers = wait_for(lambda: _children(master.pid), timeout=30, what="two workers")
        assert len(workers) == 2
        log = (tmp_path / "gunicorn.log").read_text()
        shared = Path(re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", log).group(1))
        assert shared == folder if named else shared != folder
        # Concurrent requests on fresh connections. The kernel may hand a whole batch to one
        # worker, so batches go on until both processes have served some (and so counted them).
        sent = 0
        for _ in range(ROUNDS):
            with ThreadPoolExecutor(8) as pool:
                codes = list(
                    pool.map(
                        lambda _: requests.get(f"{url}/no-such-page").status_code, range(REQUESTS)
                    )
                )
            assert codes == [404] * REQUESTS
            sent += REQUESTS
            if _counting_pids(shared) == set(workers):
                break
        scrapes = [requests.get(f"{url}/metrics").text for _ in range(6)]
        # Every worker wrote its counts to the one shared folder (a stale file was dropped)...
        assert _counting_pids(shared) == set(workers)

    assert shared.exists() if named else not shared.exists()  # a folder made up is removed
    # ... so every scrape, whichever worker answers it, counts every request.
    for text in scrapes:
        assert [float(v) for v in COUNTED.findall(text)] == [sent]


def _counting_pids(shared: Path) -> set[int]:
    return {int(p.stem.rsplit("_", 1)[-1]) for p in shared.glob("counter_*.db")}


def _children(pid: int) -> list[int] | None:
    found = [
        int(child)
        for task in Path(f"/proc/{pid}/task").glob("*")
        for child in (task / "children").read_text().split()
    ]
    return found if len(found) >= 2 else None


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.RequestException:
        return False
