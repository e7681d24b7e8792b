"""`MlsysClient` and the CLI's `mlsys submit` / `mlsys jobs`, against the real app over HTTP
with a real Celery worker: what a notebook or a shell user drives."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from mlsys import errors
from mlsys.client import ApiError, MlsysClient
from tests.integration.jobs_support import INPUT, OUTPUT, Stack, make_stack
from tests.models import FEATURES, ScriptedClassifier
from tests.services import celery_worker, free_port, serve_wsgi
from web import create_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TOKEN = "client-token-0123456789"  # pragma: allowlist secret
MLSYS = Path(sys.executable).parent / "mlsys"
ROWS = 4_000


@dataclass
class Service:
    stack: Stack
    url: str

    def client(self, token: str | None = TOKEN) -> MlsysClient:
        return MlsysClient(self.url, token)

    def cli(self, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess:
        """`mlsys ARGS` as a user runs it, pointed at this API."""
        env = {
            **{k: v for k, v in self.stack.env.items() if not k.startswith("MLSYS_API")},
            "MLSYS_API_URL": self.url,
            "MLSYS_API_TOKEN": token,
            "COLUMNS": "120",
        }
        return subprocess.run(
            [str(MLSYS), *args], env=env, cwd=self.stack.home, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip


@pytest.fixture(scope="module")
def service(tmp_path_factory, redis_url) -> Iterator[Service]:
    """The API on a real port and one worker (two processes), over a registered `scripted`
    model, slow ones, and a passengers table."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    stack = make_stack(tmp_path_factory.mktemp("client"), redis_url, MLSYS_API_TOKENS=TOKEN)
    stack.load_table(ROWS)
    stack.register()
    slow = ScriptedClassifier(delay=0.3).fit(pd.DataFrame(columns=FEATURES))
    stack.register(slow, name="slow")
    # Slow enough that a cancel sent by a freshly started CLI process on a busy machine still
    # arrives while the job runs.
    glacial = ScriptedClassifier(delay=2.0).fit(pd.DataFrame(columns=FEATURES))
    stack.register(glacial, name="glacial")
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    with celery_worker(stack.env, stack.cwd, concurrency=2), serve_wsgi(app) as url:
        yield Service(stack, url)
    stack.celery.close()


def predict(output: str, model: str = "scripted", **extra) -> dict:
    return {
        "env": "dev",
        "input_table": str(INPUT),
        "output_table": str(OUTPUT.with_table(output)),
        "model_name": model,
        **extra,
    }


def test_client_submits_and_follows_a_job_to_the_end(service):
    client = service.client()
    job = client.submit_predict(**predict("by_client", shards=2))
    updates: list[dict] = []

    final = client.wait(job["job_id"], on_update=updates.append, interval=0.05)

    assert final["state"] == "succeeded", final["error"]
    assert final["result"]["rows_written"] == ROWS
    assert updates[-1] == final and all(u["job_id"] == job["job_id"] for u in updates)
    percents = [u["progress"]["percent"] for u in updates]
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert client.job(job["job_id"]) == final
    listed = client.jobs(kind="predict", state="succeeded")["jobs"]
    assert job["job_id"] in [j["job_id"] for j in listed]
    assert client.jobs(kind="registry_sync")["jobs"] == []
    sync = client.submit_registry_sync("dev")
    assert client.wait(sync["job_id"], interval=0.05)["state"] == "succeeded"


def test_client_wait_gives_up_and_cancel_stops_the_job(service):
    client = service.client()
    job = client.submit_predict(**predict("cancelled_by_client", model="glacial"))

    with pytest.raises(ApiError, match=f"Job {job['job_id']} is still (queued|running)"):
        client.wait(job["job_id"], interval=0.05, timeout=0.2)
    cancelled = client.cancel(job["job_id"])

    assert cancelled["state"] == "cancelled"
    assert client.wait(job["job_id"], interval=0.05)["state"] == "cancelled"
    with pytest.raises(ApiError, match="^409: ") as again:
        client.cancel(job["job_id"])
    assert again.value.status == 409


@pytest.mark.parametrize(
    ("make", "call", "status", "message"),
    [
        (lambda s: s.client(), lambda c: c.job("0123456789abcdef"), 404, "^404: "),
        (lambda s: s.client("wrong-token-0000"), lambda c: c.jobs(), 401, "^401: "),
        (lambda s: s.client(None), lambda c: c.submit_registry_sync("dev"), 401, "^401: "),
        (lambda s: s.client(), lambda c: c.submit_registry_sync("qa"), 400, "^400: .*qa"),
        (
            lambda s: s.client(),
            lambda c: c.submit_predict(**predict("x", model="nope")),
            404,
            "^404: .*nope",
        ),
    ],
)
def test_client_turns_problems_into_api_errors(service, make, call, status, message):
    with pytest.raises(ApiError, match=message) as raised:
        call(make(service))
    assert raised.value.status == status


@pytest.mark.parametrize(
    ("call", "raised", "family"),
    [
        (lambda c: c.job("0123456789abcdef"), errors.JobNotFound, errors.NotFound),
        (
            lambda c: c.submit_predict(**predict("x", model="nope")),
            errors.ModelNotFound,
            errors.NotFound,
        ),
        (lambda c: c.submit_registry_sync("qa"), errors.BadInput, errors.BadInput),
    ],
)
def test_remote_callers_catch_the_class_the_server_raised(service, call, raised, family):
    with pytest.raises(raised) as caught:
        call(service.client())
    assert isinstance(caught.value, family) and isinstance(caught.value, ApiError)
    assert caught.value.status == raised.status


def test_an_unreachable_api_is_unavailable_not_bad_input():
    with pytest.raises(errors.Unavailable) as caught:
        MlsysClient(f"http://127.0.0.1:{free_port()}", TOKEN).jobs()
    assert not isinstance(caught.value, errors.BadInput)


def test_client_that_cannot_reach_the_api_says_where_it_looked():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ApiError, match=f"Cannot reach the mlsys API at {url}") as raised:
        MlsysClient(url, TOKEN).jobs()
    assert "MLSYS_API_URL" in raised.value.hint


def test_cli_exits_3_when_the_service_fails_or_cannot_be_reached(tmp_path, redis_url):
    """Not the caller's input (exit 2): the API answered 5xx (here its Redis is gone) or was
    not there; one line."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    stack = make_stack(tmp_path, dead_redis, MLSYS_API_TOKENS=TOKEN)
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    with serve_wsgi(app) as url:
        broken = Service(stack, url).cli("jobs", "list")
    unreachable = Service(stack, f"http://127.0.0.1:{free_port()}").cli("jobs", "list")

    assert broken.returncode == 3, broken.stderr
    (line,) = broken.stderr.splitlines()
    assert line == "error: 503: The job store (Redis) is unavailable. Retry shortly."
    assert unreachable.returncode == 3, unreachable.stderr
    assert unreachable.stderr.startswith("error: Cannot reach the mlsys API")


def test_cli_lists_say_when_they_are_empty_and_registry_jobs_show_no_percent(service):
    empty = service.cli("jobs", "list", "--kind", "alias_move")
    no_schedules = service.cli("schedule", "list")
    sync = service.client().submit_registry_sync("dev")
    service.client().wait(sync["job_id"], interval=0.05)
    listed = service.cli("jobs", "list", "--kind", "registry_sync")

    assert (empty.returncode, empty.stdout) == (0, "no alias_move jobs\n")
    assert (no_schedules.returncode, no_schedules.stdout) == (0, "no schedules\n")
    (line,) = [row for row in listed.stdout.splitlines() if row.startswith(sync["job_id"])]
    assert line.split()[1:4] == ["registry_sync", "succeeded", "-"]


def test_concurrent_write_empty_jobs_land_exactly_one(service):
    # Both pass the submit check (the table does not exist yet); only one may land.
    client = service.client()
    body = predict("write_empty_race", model="slow", write_disposition="WRITE_EMPTY", shards=2)
    with ThreadPoolExecutor(2) as pool:
        jobs = list(pool.map(lambda _: client.submit_predict(**body), range(2)))
    finals = [client.wait(j["job_id"], interval=0.1, timeout=120) for j in jobs]

    by_state = sorted((f["state"], f["job_id"]) for f in finals)
    assert [state for state, _ in by_state] == ["failed", "succeeded"], finals
    (loser,) = [f for f in finals if f["state"] == "failed"]
    assert loser["error"]["type"] == "TableNotEmpty", loser["error"]
    rows = service.stack.output_rows(OUTPUT.with_table("write_empty_race"))
    assert len(rows) == ROWS and set(rows["JobId"]) == {by_state[1][1]}


def test_cli_submit_wait_then_status_and_list(service):
    submitted = service.cli(
        "submit", "predict", "--env", "dev", "--input-table", str(INPUT),
        "--output-table", str(OUTPUT.with_table("by_cli")), "--model-name", "scripted",
        "--id-columns", "PassengerId", "--shards", "2", "--wait",
    )  # fmt: skip

    assert submitted.returncode == 0, submitted.stderr
    job_id, _, report = submitted.stdout.partition("\n")
    final = json.loads(report)
    assert final["job_id"] == job_id and final["state"] == "succeeded"
    assert final["result"]["rows_written"] == ROWS
    status = service.cli("jobs", "status", job_id)
    assert status.returncode == 0 and json.loads(status.stdout)["state"] == "succeeded"
    listed = service.cli("jobs", "list", "--kind", "predict", "--state", "succeeded")
    (line,) = [row for row in listed.stdout.splitlines() if row.startswith(job_id)]
    assert line.split()[1:4] == ["predict", "succeeded", "100.0%"]


def test_cli_submit_without_wait_prints_the_id_and_cancel_stops_it(service):
    submitted = service.cli(
        "submit", "predict", "--env", "dev", "--input-table", str(INPUT),
        "--output-table", str(OUTPUT.with_table("cancelled_by_cli")), "--model-name", "glacial",
        "--idempotency-key", "cli-cancel-1",
    )  # fmt: skip
    job_id = submitted.stdout.strip()
    again = service.cli(
        "submit", "predict", "--env", "dev", "--input-table", str(INPUT),
        "--output-table", str(OUTPUT.with_table("cancelled_by_cli")), "--model-name", "glacial",
        "--idempotency-key", "cli-cancel-1",
    )  # fmt: skip

    assert submitted.returncode == 0 and len(job_id) >= 16, submitted.stderr
    assert again.stdout.strip() == job_id  # one key, one job
    cancelled = service.cli("jobs", "cancel", job_id)
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["state"] == "cancelled"
    followed = service.cli("jobs", "status", job_id, "--wait")
    assert followed.returncode == 1  # the job ended, but not in success
    assert json.loads(followed.stdout)["state"] == "cancelled"


@pytest.mark.parametrize(
    ("args", "token", "message"),
    [
        (["jobs", "status", "0123456789abcdef"], TOKEN, "error: 404: "),
        (["jobs", "cancel", "0123456789abcdef"], TOKEN, "error: 404: "),
        (["jobs", "list"], "wrong-token-0000", "error: 401: "),
        (["submit", "registry", "--env", "qa"], TOKEN, "error: 400: "),
    ],
)
def test_cli_api_errors_are_one_line_and_exit_2(service, args, token, message):
    result = service.cli(*args, token=token)

    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(message), line
    assert result.stdout == ""
