"""The monitoring profiles of a job's shards between the shard tasks and the commit.

Each shard task saves its profile (JSON, as `mlsys.monitoring.Profile.to_json` gives it) under
the job; a shard's retry replaces its own; the commit reads them all and merges them. Kept in
Redis beside the job's other keys (`mlsys.jobs.keys.shard_profiles`), for a week at most.
"""

from __future__ import annotations

import json
from typing import Any

from mlsys.jobs import keys


class ShardProfiles:
    """The shards' profiles of each job, one hash field per shard."""

    def __init__(self, client: Any, ttl_seconds: float = 7 * 24 * 3600) -> None:
        self.r = client
        self.ttl = int(ttl_seconds)

    def save(self, job_id: str, shard: int, profile: dict[str, Any]) -> None:
        with self.r.pipeline() as pipe:
            pipe.hset(keys.shard_profiles(job_id), str(shard), json.dumps(profile))
            pipe.expire(keys.shard_profiles(job_id), self.ttl)
            pipe.execute()

    def load(self, job_id: str) -> list[dict[str, Any]]:
        raw = self.r.hgetall(keys.shard_profiles(job_id))
        return [json.loads(value) for _, value in sorted(raw.items())]

    def forget(self, job_id: str) -> None:
        self.r.delete(keys.shard_profiles(job_id))
