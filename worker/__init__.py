"""Celery workers, beat and Flower for mlsys: `celery -A worker worker|beat|flower`."""

from worker import conf_dump, priority, reaper, shutdown  # noqa: F401  conf_dump registers commands
from worker.app import celery_app

app = celery_app
reaper.connect()  # every worker runs the recovery loop (a no-op in beat, Flower and the API)
shutdown.connect()  # a worker told to stop gives back its units at once

__all__ = ["app", "celery_app"]
