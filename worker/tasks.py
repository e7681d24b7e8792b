"""Celery tasks: thin wrappers that claim a unit of a job and call an mlsys pipeline.

A predict job is: plan (resolve, snapshot, split into shards) -> one task per shard (stream the
shard through the model into its own staging) -> commit (one atomic append, once). The last
shard to finish dispatches the commit; the reaper re-dispatches any unit whose worker died.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from celery import shared_task

from mlsys.evaluation.pipeline import evaluation_warehouse, run_evaluation
from mlsys.evaluation.spec import EvaluateSpec
from mlsys.ids import check_alias
from mlsys.jobs import (
    ALIAS,
    COMMIT,
    EVALUATE,
    PLAN,
    SYNC,
    SYSTEM_PRINCIPAL,
    JobKind,
    JobRecord,
    NewJob,
)
from mlsys.jobs import shard_unit as shard_unit_name
from mlsys.jobs.profiles import ShardProfiles
from mlsys.monitoring import Profile
from mlsys.predict import (
    PredictSpec,
    PreparedPredict,
    commit_job,
    plan_shards,
    prepare_predict,
    record_job_stats,
    run_monitored_shard,
    shards_for_slots,
)
from mlsys.registry import read_registry, set_alias, sync_registry
from mlsys.settings import Settings
from mlsys.warehouse import JobScope
from worker import context
from worker.app import (
    ALIAS_TASK,
    COMMIT_TASK,
    EVALUATE_TASK,
    PLAN_TASK,
    SHARD_TASK,
    SYNC_PERIODIC_TASK,
    SYNC_TASK,
)
from worker.dispatch import send_unit
from worker.units import claimed

log = logging.getLogger(__name__)
#: How long the next landing of a table, or registry sync, waits for the lock of the one
#: running before its unit is retried (a killed holder's lock lapses with its lease).
LOCK_SECONDS = 15 * 60

# Tasks are acked late and fenced by leases (worker/units.py), results live in mlsys' job
# records, so Celery keeps none.
TASK_OPTIONS = {"ignore_result": True, "acks_late": True, "track_started": True}


def _discard(job_id: str, env: str):
    """Cleanup for a job that stops: drop its snapshot and staging."""
    return lambda: context.warehouse().discard(JobScope(job_id, env))


def _record(job_id: str) -> JobRecord:
    record = context.jobs().record(job_id)
    if record is None:
        raise LookupError(f"job {job_id} has no record (expired?)")
    return record


def _prepared(record: JobRecord, settings: Settings) -> PreparedPredict:
    """The job's prepared predict, read back typed from its record and checked again (the
    record in Redis is not trusted to name only tables the API accepted)."""
    return PreparedPredict.from_json(record.prepared, settings)


@shared_task(name=PLAN_TASK, **TASK_OPTIONS)
def plan(job_id: str, attempt: int = 1) -> None:
    """Resolve and freeze the job's input, then fan out one task per shard."""
    jobs, settings, warehouse = context.jobs(), context.settings(), context.warehouse()
    record = _record(job_id)
    env = record.params["env"]
    with claimed(jobs, settings, job_id, PLAN, attempt, _discard(job_id, env)) as run:
        if run is None:
            return
        shards = record.plan  # set if an earlier attempt planned, then died before fanning out
        if shards is None:
            if record.prepared is not None:
                prepared = _prepared(record, settings)
            else:
                spec = PredictSpec.from_json(record.params, settings)
                prepared = prepare_predict(spec, warehouse, settings, context.store())
            # A job without `shards` gets every worker slot once it is big enough to share.
            slots = shards_for_slots(prepared, settings, jobs.worker_slots())
            read_plan = plan_shards(prepared, warehouse, settings, job_id, slots)
            run.check()
            shards = jobs.record_plan(
                job_id, read_plan.shards, prepared.to_json(), read_plan.rows_total
            )
        else:
            jobs.record_plan(job_id, shards, record.prepared or {}, record.rows_total or 0)
        current = jobs.units(job_id)
        for unit in (shard_unit_name(i) for i in range(len(shards))):
            if current[unit]["state"] == "queued":
                send_unit(job_id, unit, current[unit]["attempt"])
        jobs.mark_done(job_id, PLAN, attempt)


@shared_task(name=SHARD_TASK, **TASK_OPTIONS)
def shard(job_id: str, index: int, attempt: int = 1) -> None:
    """Stream one shard through the model into its staging."""
    jobs, settings = context.jobs(), context.settings()
    record = _record(job_id)
    unit, env = shard_unit_name(index), record.params["env"]
    with claimed(jobs, settings, job_id, unit, attempt, _discard(job_id, env)) as run:
        if run is None:
            return
        prepared = _prepared(record, settings)
        done = 0

        def progress(rows: int) -> None:
            nonlocal done
            done += rows
            jobs.set_progress(job_id, index, done)

        profile = run_monitored_shard(
            prepared,
            record.plan[index],
            index,
            job_id,
            context.warehouse(),
            context.store(),
            settings,
            progress=progress,
            cancelled=run.should_stop,
        )
        run.check()  # cancelled or superseded while staging: do not count this attempt
        if profile is not None:
            ShardProfiles(jobs.client).save(job_id, index, profile.to_json())
        finished = jobs.mark_done(job_id, unit, attempt)
        if finished == record.shards_total:
            send_unit(job_id, COMMIT, jobs.units(job_id)[COMMIT]["attempt"])


@shared_task(name=COMMIT_TASK, **TASK_OPTIONS)
def commit(job_id: str, attempt: int = 1) -> None:
    """Land all staged shards in the output table, once."""
    jobs, settings, warehouse = context.jobs(), context.settings(), context.warehouse()
    record = _record(job_id)
    env = record.params["env"]
    with claimed(jobs, settings, job_id, COMMIT, attempt, _discard(job_id, env)) as run:
        if run is None:
            return
        prepared = _prepared(record, settings)
        if not jobs.begin_commit(job_id):  # cancelled first
            run.check()
            return
        started = time.monotonic()
        if record.rows_written is not None:  # landed before a crash; only finish the job
            rows, already = record.rows_written, True
        else:
            # One landing per table at a time: BigQuery aborts one of two transactions that
            # change a table at once (a WRITE_TRUNCATE's), with a reason it does not retry.
            with run.exclusive(f"table:{prepared.spec.output_table}", LOCK_SECONDS):
                rows, already = commit_job(prepared, warehouse, job_id, record.shards_total)
            jobs.mark_committed(job_id, rows)
        # Drift of the whole input: the shards' profiles merged (never fails the job).
        profiles = ShardProfiles(jobs.client)
        monitoring = (
            record_job_stats(
                warehouse,
                settings,
                prepared,
                job_id,
                [Profile.from_json(p) for p in profiles.load(job_id)],
                principal=record.principal,
            )
            if settings.monitoring
            else None
        )
        # Staging goes before the job says succeeded: a client that sees it done sees no
        # leftovers, and a crash in between re-runs this task, which finishes from the mark.
        warehouse.discard(JobScope(job_id, prepared.env))
        jobs.mark_done(job_id, COMMIT, attempt)
        result = {
            "rows_written": rows,
            "output_table": str(prepared.spec.output_table),
            "model": prepared.model.ref,
            "shards": record.shards_total,
            "seconds": round(_seconds_since(record.started_at), 3),
            "commit_seconds": round(time.monotonic() - started, 3),
            "monitoring": monitoring,
        }
        jobs.succeed(job_id, result)
        profiles.forget(job_id)
        log.info(
            "job %s committed %s rows to %s%s",
            job_id,
            rows,
            result["output_table"],
            " (already landed)" if already else "",
        )


@shared_task(name=SYNC_TASK, **TASK_OPTIONS)
def registry_sync(job_id: str, attempt: int = 1) -> None:
    """Scan one environment's bucket into its registry table."""
    jobs, settings = context.jobs(), context.settings()
    env = _record(job_id).params["env"]
    with claimed(jobs, settings, job_id, SYNC, attempt) as run:
        if run is None:
            return
        # Single-flight per environment: periodic and requested syncs never MERGE at once.
        with run.exclusive(f"registry-sync:{env}", LOCK_SECONDS):
            result = sync_registry(context.warehouse(), context.store(), settings, env)
        jobs.mark_done(job_id, SYNC, attempt)
        jobs.succeed(job_id, result.to_json())


@shared_task(name=ALIAS_TASK, **TASK_OPTIONS)
def alias_move(job_id: str, attempt: int = 1) -> None:
    """Point an alias at a version in the registry table (the API only reads it)."""
    jobs, settings = context.jobs(), context.settings()
    params = _record(job_id).params
    with claimed(jobs, settings, job_id, ALIAS, attempt) as run:
        if run is None:
            return
        warehouse = context.warehouse()
        # Where the alias pointed before, so the job can say "champion: v1 -> v2".
        before = alias_holder(
            warehouse, settings, params["env"], params["model_name"], params["alias"]
        )
        entry = set_alias(
            warehouse,
            settings,
            params["env"],
            params["model_name"],
            params["alias"],
            params["version"],
        )
        jobs.mark_done(job_id, ALIAS, attempt)
        jobs.succeed(job_id, {**entry.to_json(), "previous_version": before})


@shared_task(name=EVALUATE_TASK, **TASK_OPTIONS)
def evaluate(job_id: str, attempt: int = 1) -> None:
    """Join a predictions table with its labels in the warehouse and store the metrics."""
    jobs, settings = context.jobs(), context.settings()
    record = _record(job_id)
    with claimed(jobs, settings, job_id, EVALUATE, attempt) as run:
        if run is None:
            return
        # Parsed again with every check: the record in Redis is not trusted.
        spec = EvaluateSpec.from_json(record.params, settings)
        warehouse = evaluation_warehouse(settings)
        try:
            result = run_evaluation(
                spec,
                warehouse,
                settings,
                job_id,
                # Progress counts the metric queries (record.rows_total of them).
                progress=lambda done, total: jobs.set_progress(job_id, 0, done),
                cancelled=run.should_stop,
                principal=record.principal,
            )
        finally:
            warehouse.close()
        run.check()
        jobs.mark_done(job_id, EVALUATE, attempt)
        jobs.succeed(job_id, result)


@shared_task(name=SYNC_PERIODIC_TASK, ignore_result=True)
def registry_periodic(env: str) -> str:
    """Beat's entry point: record a registry sync job and run it here."""
    new = NewJob(JobKind.REGISTRY_SYNC, {"env": env, "trigger": "schedule"}, SYSTEM_PRINCIPAL)
    job, _ = context.jobs().create(new)
    registry_sync(job.job_id, 1)
    return job.job_id


def alias_holder(warehouse, settings: Settings, env: str, name: str, alias: str) -> str | None:
    """The version `alias` of model `name` points at now (None: no version)."""
    alias = check_alias(alias)
    for entry in read_registry(warehouse, settings, env):
        if entry.model_name == name and alias in entry.aliases:
            return entry.version
    return None


def _seconds_since(iso: str | None) -> float:
    if not iso:
        return 0.0
    return (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
