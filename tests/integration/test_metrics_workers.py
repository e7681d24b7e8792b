"""/metrics of the API as the image serves it (`docker/start web`: gunicorn, two workers,
tokens required): every answer counts the requests of both workers, whichever worker answers
(the access log proves both answered). test_gunicorn_metrics covers the multiprocess folder."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.services import free_port, isolated_env, process, repo_root, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = "metrics-token-0123456789"  # pragma: allowlist secret
MISSES = 80
COUNTED = 'mlsys_http_requests_total{method="GET",route="/jobs/<job_id>",status="404"}'


ACCESS = "mlsys-access %(p)s %(U)s %(s)s"  # gunicorn's access log: pid, path, status


def pids(log: Path, prefix: str) -> set[str]:
    """Gunicorn workers (pids) that answered a path starting with `prefix`."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return {
        fields[1]
        for line in lines
        if (fields := line.split())[:1] == ["mlsys-access"] and fields[2].startswith(prefix)
    }


def counted(text: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(COUNTED + " "):
            return float(line.split()[-1])
    return None


def test_metrics_sum_both_gunicorn_workers(tmp_path, redis_url):
    port = free_port()
    env = isolated_env()
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        PORT=str(port),
        WEB_CONCURRENCY="2",
        REDIS_URL=redis_url,
        MLSYS_HOME=str(tmp_path / "home"),
        MLSYS_API_TOKENS=TOKEN,
    )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def up() -> bool:
        try:
            return requests.get(f"{url}/health", timeout=5).ok
        except requests.RequestException:  # not listening yet, or workers still booting
            return False

    def burst(path: str, n: int) -> list[int]:
        """`n` GETs, sixteen at a time, each on its own connection."""
        with ThreadPoolExecutor(16) as pool:
            return list(
                pool.map(
                    lambda i: requests.get(f"{url}{path}{i}", headers=headers, timeout=10),
                    range(n),
                )
            )

    log = tmp_path / "web.log"
    start = ["bash", str(repo_root() / "docker" / "start"), "web", "--access-logformat", ACCESS]
    with process(start, env, repo_root(), log):
        wait_for(up, timeout=60, what="gunicorn")
        # Both workers booted and answering (the access log names the pid of each answer).
        wait_for(
            lambda: burst("/health?", 16) and len(pids(log, "/health")) == 2,
            timeout=60,
            what="both gunicorn workers to answer",
        )
        statuses = [r.status_code for r in burst("/jobs/nope", MISSES)]
        assert statuses == [404] * MISSES
        assert len(pids(log, "/jobs/")) == 2, "one worker answered every request"
        seen = [
            counted(requests.get(f"{url}/metrics", headers=headers, timeout=10).text)
            for _ in range(12)
        ]

    assert seen == [float(MISSES)] * 12, seen
