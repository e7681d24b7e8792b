"""Beat through celery-redbeat: two beat processes never double the periodic registry sync, and
the waiting one takes over when the lock holder dies."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlsys.artifacts import save_model
from mlsys.jobs import Job, JobKind
from mlsys.registry import read_registry
from tests.integration.jobs_support import make_stack
from tests.models import FEATURES, ScriptedClassifier
from tests.services import celery, celery_worker, kill_group, process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(150)]

LOCK = "mlsys:redbeat::lock"  # redbeat_key_prefix + ":lock"
SENT = "Sending due task registry-sync-dev"


def beat(stack, name: str):
    return process(
        celery("beat", "--loglevel=INFO"), stack.env, stack.cwd, stack.home / f"beat-{name}.log"
    )


def sends(log: Path) -> int:
    """How many periodic syncs a beat process has sent (it logs each one)."""
    return log.read_text(errors="replace").count(SENT) if log.exists() else 0


def test_two_beats_send_each_sync_once_and_hand_over_when_the_holder_dies(
    tmp_path, redis_client, redis_url
):
    stack = make_stack(
        tmp_path, redis_url, MLSYS_REGISTRY_SYNC_INTERVAL="1", MLSYS_ENVIRONMENTS="dev"
    )
    model = ScriptedClassifier().fit(pd.DataFrame(columns=FEATURES))
    # Saved to the bucket but never synced by hand: only beat can register it.
    bucket = stack.settings.bucket_for("dev")
    save_model(model, stack.store, bucket, "scheduled", 1, target="Survived",
               id_columns=["PassengerId"])  # fmt: skip
    logs = {name: stack.home / f"beat-{name}.log" for name in ("a", "b")}

    def scheduled() -> list[Job]:
        return [
            j
            for j in stack.jobs.page(kind=JobKind.REGISTRY_SYNC, limit=500).jobs
            if j.params.get("trigger") == "schedule"
        ]

    with celery_worker(stack.env, stack.cwd, concurrency=2):
        with beat(stack, "a") as a, beat(stack, "b") as b:
            procs = {"a": a, "b": b}
            wait_for(lambda: len(scheduled()) >= 3, timeout=60, what="three scheduled syncs")
            counts = {name: sends(log) for name, log in logs.items()}
            # Only the lock holder sends; the other beat waits for the lock and sends nothing.
            (holder,) = [name for name, n in counts.items() if n > 0]
            (waiter,) = set(logs) - {holder}
            assert counts[waiter] == 0, counts

            kill_group(procs[holder])  # kill -9: its lock is never released...
            assert redis_client.exists(LOCK)
            redis_client.pexpire(LOCK, 1)  # ...and expires (fast-forwarded from 30 s)
            wait_for(lambda: sends(logs[waiter]) >= 2, timeout=60, what="the waiter to send")
            assert sends(logs[holder]) == counts[holder]  # the dead one sent no more
        total = sum(sends(log) for log in logs.values())
        # Every sent sync ran exactly once: one job each, none doubled or lost.
        wait_for(lambda: len(scheduled()) >= total, timeout=60, what="every sent sync to run")
        syncs = scheduled()
    assert len(syncs) == total
    # (newest first; the newest may have been mid-run when the worker stopped)
    assert all(j.state == "succeeded" for j in syncs[1:]), [j.state for j in syncs]
    entries = read_registry(stack.warehouse, stack.settings, "dev")
    assert [(e.model_name, e.version) for e in entries] == [("scheduled", "v1")]
