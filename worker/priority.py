"""The worker's pool processes run at a lower CPU priority than the API.

Where the API and the workers share a machine (docker compose, honcho, one VM), a burst of jobs
keeps every core busy with `predict_proba`; at equal priority each submit or status read then
waits its turn behind model work, and answers in hundreds of milliseconds instead of tens. Jobs
are throughput work and lose almost nothing when the API takes the few milliseconds of CPU a
request needs first, so each pool process lowers itself by MLSYS_WORKER_NICE (nice(2): a process
may always lower its own priority, never raise it back). The worker's main process, which
receives messages and keeps the broker connection alive, stays at its own priority. On Cloud Run
the API and the workers are separate services, and this changes nothing between them.
"""

from __future__ import annotations

import logging
import os

from celery.signals import worker_process_init

from mlsys.settings import get_settings

log = logging.getLogger(__name__)


@worker_process_init.connect
def lower_priority(**_: object) -> None:
    step = get_settings().worker_nice
    if not step:
        return
    try:
        os.nice(step)
    except OSError as error:  # a sandbox that forbids it: run at the inherited priority
        log.warning("could not lower the pool process's priority: %s", error)
