"""Every name the job engine shares with the API, the workers, the client and the CLI."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job is in its life; the last three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
LIVE = frozenset({JobState.QUEUED, JobState.RUNNING})


class JobKind(StrEnum):
    """What a job does."""

    PREDICT = "predict"
    REGISTRY_SYNC = "registry_sync"
    ALIAS_MOVE = "alias_move"  # a registry write: the API only reads, a worker writes
    EVALUATE = "evaluate"  # predictions against labels (mlsys.evaluation)

    @property
    def first_unit(self) -> str:
        """The unit a new job of this kind starts with."""
        return {JobKind.PREDICT: PLAN, JobKind.ALIAS_MOVE: ALIAS, JobKind.EVALUATE: EVALUATE}.get(
            self, SYNC
        )


class Phase(StrEnum):
    """The finer step of a job, shown beside its state."""

    QUEUED = "queued"  # recorded, no worker has started it
    PLANNING = "planning"  # resolving the model, freezing the input, splitting it into shards
    SYNCING = "syncing"  # a registry sync is scanning the model store
    PREDICTING = "predicting"  # shards stream through the model into staging
    EVALUATING = "evaluating"  # the warehouse joins predictions with labels and counts
    COMMITTING = "committing"  # the staged rows are landing in the output; cancel is refused
    COMMITTED = "committed"  # the rows landed; the record is about to say succeeded
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Units: the steps of a job, each run exactly once at a time under a lease.
PLAN = "plan"
COMMIT = "commit"
SYNC = "sync"
ALIAS = "alias"
EVALUATE = "evaluate"
_SHARD = "shard:"

#: The principal of jobs nobody submitted over the API (beat's periodic syncs).
SYSTEM_PRINCIPAL = "system"


def shard_unit(index: int) -> str:
    return f"{_SHARD}{index}"


def shard_index(unit: str) -> int | None:
    """The shard number of a unit name, or None for plan/commit/sync/alias."""
    return int(unit[len(_SHARD) :]) if unit.startswith(_SHARD) else None


def unit_phase(unit: str) -> Phase | None:
    """The phase a job enters when `unit` first starts (None: unchanged)."""
    return {PLAN: Phase.PLANNING, SYNC: Phase.SYNCING, EVALUATE: Phase.EVALUATING}.get(unit)


def spent_attempts(unit: dict) -> int:
    """Attempts a unit's record counts against MLSYS_MAX_ATTEMPTS: its attempt number less
    the attempts given back by stopping workers (a new number each, for fencing, but no
    fault of the unit)."""
    return int(unit["attempt"]) - int(unit.get("given") or 0)
