"""Celery workers, beat and Flower for mlsys: `celery -A worker worker|beat|flower`."""

from worker import reaper
from worker.app import celery_app

app = celery_app
reaper.connect()  # every worker runs the recovery loop (a no-op in beat, Flower and the API)

__all__ = ["app", "celery_app"]
