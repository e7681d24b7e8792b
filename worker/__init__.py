"""Celery workers, beat and Flower for mlsys: `celery -A worker worker|beat|flower`."""

from worker.app import celery_app

app = celery_app

__all__ = ["app", "celery_app"]
