"""The Celery app, configured from mlsys.settings. `celery -A worker worker|beat|flower`."""

from __future__ import annotations

import os
import warnings

from celery import Celery

from mlsys.jobs import keys
from mlsys.resources import web_threads
from mlsys.settings import Settings, get_settings
from worker import fairness

#: Task names, shared with the web app (which enqueues by name and imports no task code).
PLAN_TASK = "mlsys.predict.plan"
SHARD_TASK = "mlsys.predict.shard"
COMMIT_TASK = "mlsys.predict.commit"
SYNC_TASK = "mlsys.registry.sync"
ALIAS_TASK = "mlsys.registry.alias"
EVALUATE_TASK = "mlsys.evaluation.evaluate"
SYNC_PERIODIC_TASK = "mlsys.registry.periodic"
QUEUE = "mlsys"

# A model saved with n_jobs=-1 (a forest trained on every core of a laptop) predicts in a
# Celery pool process, which is daemonic: joblib cannot start worker processes there, runs the
# batch on one core (the pool has a process per core already) and warns, once per batch.
# The fallback is what a worker wants; the warning says nothing anyone can act on. Set here,
# before the pool forks, so every pool process inherits the filter.
warnings.filterwarnings(
    "ignore", message="Loky-backed parallel loops cannot be called in a multiprocessing"
)


def celery_config(settings: Settings) -> dict:
    """Every Celery setting mlsys relies on, with why."""
    hard = settings.task_time_limit
    # kombu reads no TLS options from a rediss:// URL's query (it would connect with
    # CERT_NONE and a warning): pass them explicitly, so the broker verifies Memorystore's CA.
    # https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-use-ssl
    tls = settings.redis_tls()
    concurrency = settings.worker_concurrency or os.cpu_count() or 1
    return {
        "broker_url": settings.redis_url,
        # kombu's Redis transport, but one that survives Redis going away with unacked
        # messages in hand, and puts them back once it returns (worker/broker.py).
        "broker_transport": "worker.broker:Transport",
        "broker_use_ssl": tls,
        # Job state lives in mlsys' own records (the mlsys.jobs package); no result backend is
        # needed, and none means no result keys piling up in Redis.
        "result_backend": None,
        "task_ignore_result": True,
        # JSON only: a pickle on the broker is code execution for whoever can write to Redis.
        # https://docs.celeryq.dev/en/stable/userguide/calling.html#serializers
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # Ack after the task ran, not when it was received: a worker killed mid-task leaves its
        # message unacked, to be delivered again instead of lost.
        # https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-late
        "task_acks_late": True,
        # ... and when a pool process dies (OOM, segfault, kill -9 of the child) the parent
        # requeues its message at once instead of acking it.
        # https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-reject-on-worker-lost
        "task_reject_on_worker_lost": True,
        # One message reserved per process: a long shard must not hold a second one hostage
        # on a busy worker while another worker sits idle.
        # https://docs.celeryq.dev/en/stable/userguide/optimizing.html#prefetch-limits
        "worker_prefetch_multiplier": 1,
        # With Redis, an unacked message is redelivered after visibility_timeout even if its
        # worker is alive; shorter than a task's run time means the task runs twice. So it is
        # longer than the hard time limit, and fast recovery of dead workers comes from mlsys'
        # own leases (MLSYS_RECOVERY_TIMEOUT), not from this timeout.
        # https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
        #
        # Priorities (kombu keeps one Redis list per step; 0 is served first) and one queue
        # per lane that workers consume round robin: started jobs finish before new ones
        # start, and principals take turns (worker/fairness.py).
        # https://docs.celeryq.dev/en/stable/userguide/routing.html#redis-message-priorities
        "broker_transport_options": {
            "visibility_timeout": int(hard * 1.5) + 60,
            "priority_steps": fairness.PRIORITY_STEPS,
            "queue_order_strategy": "round_robin",
        },
        "task_queues": fairness.queues(QUEUE, settings.fair_lanes),
        "task_default_priority": fairness.PLAN_PRIORITY,
        # A lost broker connection makes Redis redeliver unacked messages; cancel the running
        # copies rather than run them twice (leases would fence them anyway).
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "broker_connection_retry_on_startup": True,
        # Each sending thread holds a producer from a pool of this many while it publishes; at
        # Celery's default of 10, a gunicorn worker's other threads (16 by default) would wait
        # for one in a burst of submits.
        # https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-pool-limit
        "broker_pool_limit": max(10, web_threads() or 0),
        # Bound memory growth of long-lived pool processes (KiB), from the container's limit
        # shared by the processes, and recycle them now and then. Checked after each task.
        # https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-max-memory-per-child
        "worker_concurrency": concurrency,
        "worker_max_memory_per_child": settings.memory_per_child_kib(concurrency),
        "worker_max_tasks_per_child": 200,
        # Soft limit raises inside the task (it fails the job cleanly); hard limit kills it.
        "task_soft_time_limit": int(hard * 0.95),
        "task_time_limit": hard,
        # Events for Flower, from the workers: a task shows there once a worker received it.
        # Not "task-sent" from the API: Celery publishes those through one dispatcher per app
        # behind a lock, so a burst of submits on 16 threads queued behind each other for it
        # (100-280 ms a submit); a job waiting to start is in mlsys' own job list.
        "worker_send_task_events": True,
        "task_send_sent_event": False,
        "task_track_started": True,
        "task_default_queue": QUEUE,
        # Beat through celery-redbeat: its schedule and a lock live in Redis, so a second beat
        # process waits instead of doubling every periodic job.
        # https://redbeat.readthedocs.io/en/latest/config.html
        "beat_scheduler": "worker.beat:MlsysScheduler",
        "redbeat_redis_url": settings.redis_url,
        "redbeat_redis_use_ssl": tls,
        "redbeat_key_prefix": keys.REDBEAT_PREFIX,
        # A beat that dies is replaced by a waiting one within this many seconds.
        "redbeat_lock_timeout": 30,
        "beat_max_loop_interval": 5,
        "beat_schedule": beat_schedule(settings),
        "timezone": "UTC",
    }


def beat_schedule(settings: Settings) -> dict:
    if not settings.registry_sync_interval:
        return {}
    return {
        f"registry-sync-{env}": {
            "task": SYNC_PERIODIC_TASK,
            "schedule": settings.registry_sync_interval,
            "args": [env],
            "options": {"queue": QUEUE, "priority": fairness.PLAN_PRIORITY},
        }
        for env in settings.environments
    }


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    # UnitTask gives back the units Celery cancels when the broker connection drops.
    app = Celery(
        "mlsys", include=["worker.tasks", "worker.schedules"], task_cls="worker.reconnect:UnitTask"
    )
    app.conf.update(celery_config(settings))
    return app


celery_app = create_celery()
