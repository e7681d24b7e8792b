"""Schedules end to end: the real API over HTTP, two real beat processes (redbeat's lock), a
real worker, Redis and DuckDB. One firing per tick, pause stops runs, a moved alias is picked
up, an overlapping firing is skipped and recorded."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import datetime

import pandas as pd
import pytest
import requests

from mlsys.registry import set_alias
from mlsys.schedules import ScheduleStore
from tests.integration.jobs_support import INPUT, OUTPUT, make_stack
from tests.models import FEATURES, ScriptedClassifier
from tests.services import celery, celery_worker, isolated_env, process, serve_wsgi, wait_for
from web import create_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@contextlib.contextmanager
def api(stack) -> Iterator[str]:
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})
    with serve_wsgi(app) as url:
        yield url


def beat(stack, name: str):
    return process(
        celery("beat", "--loglevel=INFO"), stack.env, stack.cwd, stack.home / f"beat-{name}.log"
    )


@pytest.fixture
def stack(tmp_path, redis_client, redis_url):
    stack = make_stack(tmp_path, redis_url, MLSYS_SCHEDULE_MIN_INTERVAL="1")
    stack.load_table(200)
    stack.register(version=1)
    stack.register(version=2)
    slow = ScriptedClassifier(delay=2.0).fit(pd.DataFrame(columns=FEATURES))
    stack.register(slow, name="slow", version=1)
    set_alias(stack.warehouse, stack.settings, "dev", "scripted", "champion", "v1")
    return stack


def predict(model: str = "scripted", version: str = "champion", output=OUTPUT) -> dict:
    return {
        "env": "dev",
        "input_table": str(INPUT),
        "output_table": str(output),
        "model_name": model,
        "model_version": version,
    }


def runs(url: str, schedule_id: str) -> list[dict]:
    response = requests.get(f"{url}/schedules/{schedule_id}", timeout=10)
    response.raise_for_status()
    return response.json()["last_runs"]


def submitted(url: str, schedule_id: str) -> list[dict]:
    return [r for r in runs(url, schedule_id) if r["outcome"] == "submitted"]


def test_the_api_checks_schedules_like_predict_requests(stack):
    with api(stack) as url:
        bad = [
            ({"cron": "0 25 * * *", "predict": predict()}, "hour"),
            ({"cron": "0 6 * * *", "timezone": "Nowhere/City", "predict": predict()}, "zone"),
            ({"interval_seconds": 5, "cron": "* * * * *", "predict": predict()}, "exactly one"),
            ({"interval_seconds": 0.5, "predict": predict()}, "at least"),
            ({"interval_seconds": 5, "predict": predict(model="nope")}, "not registered"),
            (
                {"interval_seconds": 5, "predict": {**predict(), "idempotency_key": "k1"}},
                "idempotency_key",
            ),
        ]
        for body, words in bad:
            response = requests.post(f"{url}/schedules", json=body, timeout=10)
            assert 400 <= response.status_code < 500, (body, response.text)
            assert response.headers["Content-Type"].startswith("application/problem+json")
            assert words in response.json()["detail"], response.json()

        created = requests.post(
            f"{url}/schedules",
            json={
                "name": "nightly",
                "cron": "30 2 * * *",
                "timezone": "Europe/Paris",
                "predict": predict(),
            },
            timeout=10,
        )
        assert created.status_code == 201, created.text
        item = created.json()
        assert created.headers["Location"] == f"/schedules/{item['schedule_id']}"
        assert item["principal"] == "local" and item["predict"]["model_version"] == "champion"
        assert item["next_run_at"].endswith(("+01:00", "+02:00"))  # Paris time
        assert "T02:30:00" in item["next_run_at"]

        listed = requests.get(f"{url}/schedules", timeout=10).json()["schedules"]
        assert [s["schedule_id"] for s in listed] == [item["schedule_id"]]
        paused = requests.patch(
            f"{url}/schedules/{item['schedule_id']}", json={"paused": True}, timeout=10
        ).json()
        assert paused["paused"] and paused["next_run_at"] is None
        changed = requests.patch(
            f"{url}/schedules/{item['schedule_id']}",
            json={"paused": False, "interval_seconds": 3600},
            timeout=10,
        ).json()
        assert changed["cron"] is None and changed["interval_seconds"] == 3600
        assert changed["next_run_at"] is not None
        gone = requests.delete(f"{url}/schedules/{item['schedule_id']}", timeout=10)
        assert gone.status_code == 200
        assert requests.get(f"{url}/schedules/{item['schedule_id']}", timeout=10).status_code == 404
        assert not stack.broker.keys("mlsys:redbeat:schedule-*")


def settle(url: str, schedule_id: str) -> list[dict]:
    """The schedule's runs once the worker has caught up with beat's messages."""
    seen: list[int] = []

    def quiet():
        seen.append(len(runs(url, schedule_id)))
        return len(seen) > 3 and len(set(seen[-4:])) == 1

    wait_for(quiet, timeout=60, interval=1.0, what="the worker to catch up")
    return runs(url, schedule_id)


@pytest.mark.slow  # beat ticks in real time (over 10 s)
def test_two_beats_fire_each_tick_once_pause_stops_and_a_moved_alias_is_used(stack):
    with api(stack) as url, celery_worker(stack.env, stack.cwd, concurrency=2):
        with beat(stack, "a"), beat(stack, "b"):
            created = requests.post(
                f"{url}/schedules",
                json={"interval_seconds": 2, "predict": predict()},
                timeout=10,
            )
            assert created.status_code == 201, created.text
            schedule_id = created.json()["schedule_id"]
            wait_for(lambda: submitted(url, schedule_id), timeout=60, what="first run")
            jobs = [stack.jobs.get(r["job_id"]) for r in submitted(url, schedule_id)]
            first = stack.wait(jobs[-1].job_id)
            assert first.state == "succeeded" and first.result["model"] == "scripted/v1"
            assert first.params["schedule_id"] == schedule_id
            assert first.params["model_version"] == "champion"
            assert first.principal == "local"

            # Move the alias: a later run predicts with v2, the schedule unchanged.
            set_alias(stack.warehouse, stack.settings, "dev", "scripted", "champion", "v2")
            wait_for(
                lambda: [
                    j
                    for r in submitted(url, schedule_id)
                    if (j := stack.jobs.get(r["job_id"]))
                    and j.state == "succeeded"
                    and j.result["model"] == "scripted/v2"
                ],
                timeout=90,
                interval=0.5,
                what="a run with the moved alias",
            )

            # Pause: once the worker has caught up, no firing submits a job any more.
            response = requests.patch(
                f"{url}/schedules/{schedule_id}", json={"paused": True}, timeout=10
            )
            assert response.json()["paused"]
            paused_at = time.monotonic()
            history = settle(url, schedule_id)
            before = len([r for r in history if r["outcome"] == "submitted"])
            time.sleep(max(0.0, 6 - (time.monotonic() - paused_at)))
            assert len(submitted(url, schedule_id)) == before
            assert len(runs(url, schedule_id)) == len(history)

            # Every firing is recorded, submitted or skipped: one per 2 s tick, not two.
            fired = sorted(datetime.fromisoformat(r["at"]) for r in history)
            span = (fired[-1] - fired[0]).total_seconds()
            assert len(fired) <= span / 2 + 3, [r["outcome"] for r in history]

            requests.patch(f"{url}/schedules/{schedule_id}", json={"paused": False}, timeout=10)
            wait_for(
                lambda: len(submitted(url, schedule_id)) > before, timeout=60, what="resumed run"
            )
            requests.delete(f"{url}/schedules/{schedule_id}", timeout=10)
    assert ScheduleStore(stack.jobs.client).get(schedule_id) is None


@pytest.mark.slow  # beat ticks in real time (over 10 s)
def test_a_firing_that_would_overlap_the_running_job_is_skipped_and_recorded(stack):
    with api(stack) as url, celery_worker(stack.env, stack.cwd, concurrency=2), beat(stack, "a"):
        slow = requests.post(
            f"{url}/schedules",
            json={"interval_seconds": 1, "predict": predict("slow", "v1")},
            timeout=10,
        ).json()["schedule_id"]
        wait_for(
            lambda: any(r["outcome"] == "skipped_overlap" for r in runs(url, slow)),
            timeout=90,
            what="a skipped firing",
        )
        requests.patch(f"{url}/schedules/{slow}", json={"paused": True}, timeout=10)
        history = settle(url, slow)
        requests.delete(f"{url}/schedules/{slow}", timeout=10)
        jobs = [r["job_id"] for r in history if r["outcome"] == "submitted"]
        records = [stack.wait(job_id) for job_id in jobs]
    skipped = [r for r in history if r["outcome"] == "skipped_overlap"]
    assert jobs and skipped and all("is still" in r["detail"] for r in skipped)
    # Never two live jobs of one schedule: each job finished before the next was submitted.
    spans = sorted((j.submitted_at, j.finished_at) for j in records)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1)), spans


def test_the_cli_and_the_python_client_drive_schedules(stack):
    import subprocess
    import sys
    from pathlib import Path

    from mlsys.client import ApiError, MlsysClient

    mlsys = Path(sys.executable).parent / "mlsys"
    with api(stack) as url:
        env = isolated_env()
        env.update(MLSYS_API_URL=url, MLSYS_HOME=str(stack.home / "cli-home"))

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [str(mlsys), "schedule", *args],
                env=env,
                cwd=stack.home,
                capture_output=True,
                text=True,
                timeout=60,
            )

        made = cli(
            "create", "--cron", "0 6 * * mon-fri", "--timezone", "America/New_York",
            "--env", "dev", "--input-table", str(INPUT), "--output-table", str(OUTPUT),
            "--model-name", "scripted", "--model-version", "champion", "--mode", "incremental",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        item = json.loads(made.stdout)
        assert item["predict"]["mode"] == "incremental"
        assert item["next_run_at"].endswith(("-05:00", "-04:00"))
        listed = cli("list")
        assert item["schedule_id"] in listed.stdout and "America/New_York" in listed.stdout
        assert "paused" in cli("pause", item["schedule_id"]).stdout

        bad = cli("update", item["schedule_id"], "--cron", "0 6 * *")
        assert bad.returncode == 2 and bad.stderr.startswith("error: 400")
        assert len(bad.stderr.strip().splitlines()) == 1

        client = MlsysClient(url)
        assert client.schedule(item["schedule_id"])["paused"]
        resumed = client.resume_schedule(item["schedule_id"])
        assert not resumed["paused"] and resumed["next_run_at"]
        every = client.create_schedule(predict(), interval_seconds=3600, name="hourly")
        assert {s["schedule_id"] for s in client.schedules()} == {
            item["schedule_id"],
            every["schedule_id"],
        }
        assert cli("delete", item["schedule_id"]).returncode == 0
        client.delete_schedule(every["schedule_id"])
        assert client.schedules() == []
        with pytest.raises(ApiError, match="404"):
            client.schedule(every["schedule_id"])
