"""Celery tasks: thin wrappers that claim a unit of a job and call an mlsys pipeline.

A predict job is: plan (resolve, snapshot, split into shards) -> one task per shard (stream the
shard through the model into its own staging) -> commit (one atomic append, once). The last
shard to finish dispatches the commit; the reaper re-dispatches any unit whose worker died.
"""

from __future__ import annotations

import json
import logging
import time

from celery import shared_task

from mlsys.predict import (
    PredictSpec,
    PreparedPredict,
    commit_job,
    plan_shards,
    prepare_predict,
    run_shard,
)
from mlsys.registry import sync_registry
from mlsys.warehouse import JobScope
from worker import context
from worker.dispatch import send_unit
from worker.units import claimed

log = logging.getLogger(__name__)

# Tasks are acked late and fenced by leases (worker/units.py), results live in mlsys' job
# records, so Celery keeps none.
TASK_OPTIONS = {"ignore_result": True, "acks_late": True, "track_started": True}


def _discard(job_id: str, env: str):
    """Cleanup for a job that stops: drop its snapshot and staging."""
    return lambda: context.warehouse().discard(JobScope(job_id, env))


def _record(job_id: str) -> dict[str, str]:
    raw = context.jobs().raw(job_id)
    if raw is None:
        raise LookupError(f"job {job_id} has no record (expired?)")
    return raw


@shared_task(name="mlsys.predict.plan", **TASK_OPTIONS)
def plan(job_id: str, attempt: int = 1) -> None:
    """Resolve and freeze the job's input, then fan out one task per shard."""
    jobs, settings, warehouse = context.jobs(), context.settings(), context.warehouse()
    raw = _record(job_id)
    params = json.loads(raw["params"])
    with claimed(jobs, settings, job_id, "plan", attempt, _discard(job_id, params["env"])) as run:
        if run is None:
            return
        if raw.get("plan"):  # an earlier attempt planned, then died before fanning out
            shards = json.loads(raw["plan"])
        else:
            if raw.get("prepared"):
                prepared = PreparedPredict.from_json(json.loads(raw["prepared"]))
            else:
                prepared = prepare_predict(
                    PredictSpec.from_json(params, settings), warehouse, settings, context.store()
                )
            read_plan = plan_shards(prepared, warehouse, settings, job_id)
            shards = read_plan.shards
            run.check()
            # First writer wins, so shards of one job always read one plan.
            jobs.r.hsetnx(jobs._job(job_id), "plan", json.dumps(shards))
            shards = json.loads(jobs.r.hget(jobs._job(job_id), "plan"))
            jobs.set_fields(
                job_id,
                prepared=json.dumps(prepared.to_json()),
                rows_total=str(read_plan.rows_total),
                shards_total=str(len(shards)),
                phase="predicting",
            )
        units = [f"shard:{i}" for i in range(len(shards))]
        jobs.init_units(job_id, [*units, "commit"])
        current = jobs.units(job_id)
        for unit in units:
            if current[unit]["state"] == "queued":
                send_unit(job_id, unit, current[unit]["attempt"])
        jobs.mark_done(job_id, "plan", attempt)


@shared_task(name="mlsys.predict.shard", **TASK_OPTIONS)
def shard(job_id: str, index: int, attempt: int = 1) -> None:
    """Stream one shard through the model into its staging."""
    jobs, settings = context.jobs(), context.settings()
    raw = _record(job_id)
    prepared = PreparedPredict.from_json(json.loads(raw["prepared"]))
    unit = f"shard:{index}"
    with claimed(jobs, settings, job_id, unit, attempt, _discard(job_id, prepared.env)) as run:
        if run is None:
            return
        shard_spec = json.loads(raw["plan"])[index]
        done = 0
        jobs.set_progress(job_id, index, 0)

        def progress(rows: int) -> None:
            nonlocal done
            done += rows
            jobs.set_progress(job_id, index, done)

        run_shard(
            prepared,
            shard_spec,
            index,
            job_id,
            context.warehouse(),
            context.store(),
            settings,
            progress=progress,
            cancelled=run.should_stop,
        )
        run.check()  # cancelled or superseded while staging: do not count this attempt
        finished = jobs.mark_done(job_id, unit, attempt)
        if finished == int(raw["shards_total"]):
            send_unit(job_id, "commit", jobs.units(job_id)["commit"]["attempt"])


@shared_task(name="mlsys.predict.commit", **TASK_OPTIONS)
def commit(job_id: str, attempt: int = 1) -> None:
    """Land all staged shards in the output table, once."""
    jobs, settings, warehouse = context.jobs(), context.settings(), context.warehouse()
    raw = _record(job_id)
    prepared = PreparedPredict.from_json(json.loads(raw["prepared"]))
    with claimed(jobs, settings, job_id, "commit", attempt, _discard(job_id, prepared.env)) as run:
        if run is None:
            return
        if not jobs.begin_commit(job_id):  # cancelled first
            run.check()
            return
        started = time.monotonic()
        rows, already = commit_job(prepared, warehouse, job_id, int(raw["shards_total"]))
        jobs.set_fields(job_id, phase="committed")
        jobs.mark_done(job_id, "commit", attempt)
        result = {
            "rows_written": rows,
            "output_table": prepared.spec["output_table"],
            "model": prepared.model_ref,
            "shards": int(raw["shards_total"]),
            "seconds": round(_seconds_since(raw.get("started_at")), 3),
            "commit_seconds": round(time.monotonic() - started, 3),
        }
        jobs.finish(job_id, "succeeded", result=result)
        warehouse.discard(JobScope(job_id, prepared.env))
        log.info(
            "job %s committed %s rows to %s%s",
            job_id,
            rows,
            result["output_table"],
            " (already landed)" if already else "",
        )


@shared_task(name="mlsys.registry.sync", **TASK_OPTIONS)
def registry_sync(job_id: str, attempt: int = 1) -> None:
    """Scan one environment's bucket into its registry table."""
    jobs, settings = context.jobs(), context.settings()
    env = json.loads(_record(job_id)["params"])["env"]
    with claimed(jobs, settings, job_id, "sync", attempt) as run:
        if run is None:
            return
        result = sync_registry(context.warehouse(), context.store(), settings, env)
        jobs.mark_done(job_id, "sync", attempt)
        jobs.finish(job_id, "succeeded", result=result.to_json())


@shared_task(name="mlsys.registry.periodic", ignore_result=True)
def registry_periodic(env: str) -> str:
    """Beat's entry point: record a registry sync job and run it here."""
    jobs = context.jobs()
    job, _ = jobs.create("registry_sync", {"env": env, "trigger": "schedule"})
    jobs.init_units(job["job_id"], ["sync"])
    registry_sync(job["job_id"], 1)
    return job["job_id"]


def _seconds_since(iso: str | None) -> float:
    if not iso:
        return 0.0
    from datetime import UTC, datetime

    return (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()


from worker import reaper  # noqa: E402,F401  (starts the reaper in every worker)
