"""The task beat sends for a schedule: submit its predict job, or record why not.

A firing is skipped (and recorded) while the schedule's previous job is still queued or
running, and when the schedule was paused after its entry fired. The predict spec is checked
again and resolved now (a moved alias is picked up here), exactly as POST /predict checks a
request, and the job is an ordinary one owned by the schedule's principal.

The principal's credentials are checked at every firing, not only when the schedule was made:
a principal removed from the configuration, or no longer holding the scope or the datasets the
run needs, gets no job; the firing is recorded as skipped with the reason, and the schedule is
suspended (paused, its beat entry removed) until an admin resumes it.
"""

from __future__ import annotations

import logging

from celery import current_app, shared_task

from mlsys.access import Scope, check_evaluation, check_predict, load_credentials, spend_submit
from mlsys.errors import MlsysError, PermissionDenied
from mlsys.evaluation.checks import check_schemas
from mlsys.evaluation.spec import EvaluateSpec
from mlsys.jobs import LIVE, JobKind, NewJob
from mlsys.jobs.schedules import (
    FAILED,
    SKIPPED_BUDGET,
    SKIPPED_OVERLAP,
    SKIPPED_PAUSED,
    SKIPPED_REVOKED,
    SUBMITTED,
    Schedule,
    ScheduleStore,
)
from mlsys.predict import PredictSpec, prepare_predict
from worker import context
from worker.beat import RUN_SCHEDULE, remove
from worker.dispatch import send_unit

log = logging.getLogger(__name__)


def schedule_store() -> ScheduleStore:
    return ScheduleStore(context.jobs().client)


def refusal(item: Schedule) -> str | None:
    """Why the schedule's principal may not run it now (None: it may). Credentials are read
    afresh, so a principal removed from the file loses its schedules without a restart."""
    settings = context.settings()
    try:
        credentials = load_credentials(settings)
    except MlsysError as error:
        return f"the principals configuration cannot be read ({error})"
    if not credentials.enabled:
        return None  # authentication is off: every request acts as the local administrator
    principal = credentials.named(item.principal)
    if principal is None:
        return f"principal {item.principal!r} is no longer configured"
    if not principal.has(Scope.PREDICT):
        return f"principal {item.principal!r} no longer holds the 'predict' scope"
    try:
        if item.evaluate is not None:
            evaluation = EvaluateSpec.from_json(item.evaluate, settings)
            check_evaluation(evaluation.output_table, evaluation.labels_table, principal)
        else:
            spec = PredictSpec.from_json(item.predict, settings)
            check_predict(spec.input_table, spec.output_table, spec.write_disposition, principal)
    except PermissionDenied as error:
        return error.message
    return None


def suspend(store: ScheduleStore, item: Schedule, reason: str) -> None:
    """Pause the schedule with its reason, drop its beat entry, record the skipped run."""
    store.update(item, paused=True, suspended=reason)
    remove(current_app, item)
    store.record_run(item.schedule_id, SKIPPED_REVOKED, detail=f"suspended: {reason}")
    log.warning("schedule %s suspended: %s", item.schedule_id, reason)


def submit_evaluation(item: Schedule) -> str:
    """Fix the schedule's evaluation window now (the days before this firing, less the label
    delay), check the tables again, then record and queue its job."""
    jobs, settings = context.jobs(), context.settings()
    spec = EvaluateSpec.from_json(item.evaluate, settings).resolved()
    prepared = check_schemas(spec, context.warehouse())
    params = {**spec.to_json(), "schedule_id": item.schedule_id, "trigger": "schedule"}
    steps = 3 if prepared.task == "classification" else 1
    job, _ = jobs.submit(NewJob(JobKind.EVALUATE, params, item.principal, steps), send_unit)
    return job.job_id


def submit_scheduled(item: Schedule) -> str:
    """Check and resolve the schedule's predict spec now, then record and queue its job."""
    if item.evaluate is not None:
        return submit_evaluation(item)
    jobs, settings, warehouse = context.jobs(), context.settings(), context.warehouse()
    spec = PredictSpec.from_json(item.predict, settings)
    prepared = prepare_predict(spec, warehouse, settings)
    params = {**spec.to_json(), "schedule_id": item.schedule_id, "trigger": "schedule"}
    new = NewJob(
        JobKind.PREDICT,
        params,
        item.principal,
        rows_total=prepared.rows_total,
        prepared=prepared.to_json(),
    )
    job, _ = jobs.submit(new, send_unit)
    return job.job_id


@shared_task(name=RUN_SCHEDULE, ignore_result=True)
def run_schedule(schedule_id: str, timezone: str | None = None) -> str | None:
    """Submit one run of a schedule (beat's entry point); returns the job id, if any."""
    store = schedule_store()
    if store.get(schedule_id) is None:
        log.info("schedule %s is gone; nothing to run", schedule_id)
        return None
    # One firing at a time per schedule: a redelivered message waits, then sees the job the
    # first delivery submitted as an overlap.
    with store.lock(schedule_id):
        item = store.get(schedule_id)
        if item is None:
            return None
        if item.paused:
            store.record_run(schedule_id, SKIPPED_PAUSED, detail="the schedule is paused")
            return None
        reason = refusal(item)
        if reason is not None:
            suspend(store, item, reason)
            return None
        last = store.last_job(schedule_id)
        state = context.jobs().state(last) if last else None
        if state in LIVE:
            store.record_run(schedule_id, SKIPPED_OVERLAP, detail=f"job {last} is still {state}")
            log.info("schedule %s: skipped, job %s is still %s", schedule_id, last, state)
            return None
        over = spend_submit(context.settings(), item.principal)
        if over is not None:
            detail = f"principal {item.principal!r} is over its submit budget ({over})"
            store.record_run(schedule_id, SKIPPED_BUDGET, detail=detail)
            log.info("schedule %s: skipped, %s", schedule_id, detail)
            return None
        try:
            job_id = submit_scheduled(item)
        except MlsysError as error:
            store.record_run(schedule_id, FAILED, detail=str(error))
            log.warning("schedule %s: could not submit: %s", schedule_id, error)
            return None
        store.record_run(schedule_id, SUBMITTED, job_id=job_id)
        log.info("schedule %s submitted job %s", schedule_id, job_id)
        return job_id
