"""The job engine: records, units, leases, progress, cancel, listing and waiting, on Redis.

One typed API (`JobStore`) used by the web app, the workers, the CLI and the tests; nothing
else touches its Redis keys. It lives beside the core library but apart from it: it imports
redis (never celery, never flask), and the pipelines and backends (`mlsys.predict`,
`mlsys.registry`, `mlsys.warehouse`, `mlsys.store`) never import it, so they run in a notebook
without any service (tests/unit/test_import_boundaries.py holds both lines).
"""

from mlsys.jobs.model import Job, JobError, JobPage, JobRecord, NewJob, Progress, ShardView
from mlsys.jobs.names import (
    ALIAS,
    COMMIT,
    EVALUATE,
    LIVE,
    PLAN,
    SYNC,
    SYSTEM_PRINCIPAL,
    TERMINAL,
    JobKind,
    JobState,
    Phase,
    shard_index,
    shard_unit,
    spent_attempts,
)
from mlsys.jobs.store import (
    MAX_WAIT_SECONDS,
    Claim,
    JobStore,
    Retention,
    Send,
    new_job_id,
)

__all__ = [
    "ALIAS",
    "COMMIT",
    "EVALUATE",
    "LIVE",
    "MAX_WAIT_SECONDS",
    "PLAN",
    "SYNC",
    "SYSTEM_PRINCIPAL",
    "TERMINAL",
    "Claim",
    "Job",
    "JobError",
    "JobKind",
    "JobPage",
    "JobRecord",
    "JobState",
    "JobStore",
    "NewJob",
    "Phase",
    "Progress",
    "Retention",
    "Send",
    "ShardView",
    "new_job_id",
    "shard_index",
    "shard_unit",
    "spent_attempts",
]
