"""The Warehouse interface: what pipelines need from BigQuery or the embedded DuckDB.

Shaped by its callers (predict, registry, the notebook helpers) and by BigQuery's strengths:
reads are Arrow record batches split into shards that any process can read, output is staged
per (job, shard) and lands with one atomic commit, and the registry is a MERGE.
"""

from __future__ import annotations

import contextlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

# Re-exported: the backends and the pipeline name them through this module.
from mlsys.dispositions import WRITE_DISPOSITIONS as WRITE_DISPOSITIONS
from mlsys.dispositions import WriteDisposition as WriteDisposition
from mlsys.dispositions import check_disposition as check_disposition
from mlsys.errors import InvalidRequest, SchemaMismatch, TableNotFound
from mlsys.ids import TableId

#: Column every committed prediction row carries; commit checks it to land a job only once.
JOB_ID_COLUMN = "JobId"

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True)
class JobScope:
    """Names the staging area of one job: BigQuery keeps it in `{project}.mlsys_{env}`,
    DuckDB in `MLSYS_HOME/staging/{job_id}`."""

    job_id: str
    env: str

    def __post_init__(self) -> None:
        if not _JOB_ID.fullmatch(self.job_id):
            raise InvalidRequest(f"Invalid job id {self.job_id!r}.")


@dataclass(frozen=True)
class KeyExclusion:
    """Input rows a read leaves out: those whose `keys` already appear in `table` on a row
    whose `match` columns equal the given values (incremental predictions: the keys this model
    version already predicted). The anti-join runs in the warehouse, never in Python; NULL
    keys match NULL keys."""

    table: TableId
    keys: tuple[str, ...]
    match: tuple[tuple[str, str], ...] = ()


@dataclass
class ReadPlan:
    """A consistent read of a table split into shards.

    `shards` are JSON-serialisable and opaque: hand each to `read_shard` in any process (a
    Celery task on another worker). Every shard of one plan reads the same snapshot.
    """

    rows_total: int
    shards: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class CommitResult:
    rows: int
    already_committed: bool = False


@dataclass(frozen=True)
class StagedRows:
    """What a job staged: its columns and rows, or the shards it has not staged."""

    columns: list[str]
    rows: int
    missing: list[int] = field(default_factory=list)


#: How an append stays harmless when repeated: insert only while no row of the job is in the
#: target ("job", WRITE_APPEND), or only while the target has no row at all ("empty").
AppendGuard = Literal["job", "empty"]


class OutputLanding(ABC):
    """The primitives of a commit, for one job's staged output and one output table. The rules
    (which disposition does what, when a job counts as landed) are `mlsys.predict.commit`'s."""

    @abstractmethod
    def columns(self) -> list[str] | None:
        """The output table's columns; None when it does not exist."""

    @abstractmethod
    def landed(self) -> int:
        """Rows of this job already in the (existing) output table; 0 when none."""

    @abstractmethod
    def row_count(self) -> int:
        """Rows of the (existing) output table."""

    @abstractmethod
    def staged(self) -> StagedRows:
        """The job's staged output; `missing` lists the shards that staged nothing."""

    @abstractmethod
    def create_from_staged(self) -> bool:
        """Create the output table holding the staged rows.

        Returns:
            False when another writer created the table meanwhile (nothing was written).
        """

    @abstractmethod
    def replace_with_staged(self) -> None:
        """Replace every row of the output table with the staged rows, atomically.

        Raises:
            SchemaMismatch: the table's layout cannot hold the staged rows.
        """

    @abstractmethod
    def append_staged(self, guard: AppendGuard) -> int:
        """Insert the staged rows while `guard` holds.

        Returns:
            Rows inserted (0 when the guard did not hold).
        Raises:
            SchemaMismatch: staged columns the table lacks, or of other types.
        """


@dataclass(frozen=True)
class MergeResult:
    inserted: int
    updated: int

    @property
    def changed(self) -> int:
        return self.inserted + self.updated


def columns_to_add(table: TableId, rows: pa.Schema, present: Iterable[str]) -> list[pa.Field]:
    """The columns of `rows` that `table` (with columns `present`) lacks, which a merge adds
    at its end: only nullable ones, since the table's older rows have no value for them.

    Raises:
        SchemaMismatch: one of them is not nullable.
    """
    have = set(present)
    missing = [f for f in rows if f.name not in have]
    required = [f.name for f in missing if not f.nullable]
    if required:
        raise SchemaMismatch(
            f"Table {table} lacks the required column(s) {required}: a column added to an "
            "existing table must be nullable."
        )
    return missing


class Warehouse(ABC):
    """A SQL warehouse addressed by `project.dataset.table` ids."""

    #: URL scheme this backend is opened by.
    scheme: str = ""
    #: Project that `dataset.table` names and mlsys' own tables belong to.
    default_project: str = ""
    #: Whether a forked child may keep using this object (no live connection between calls).
    fork_safe: bool = False

    @abstractmethod
    def query(self, sql: str) -> pd.DataFrame:
        """Run BigQuery-dialect SQL and return the result.

        Raises:
            TableNotFound: the SQL names a table that does not exist.
            InvalidRequest: the SQL does not parse or run.
        """

    def query_arrow(self, sql: str) -> pa.Table:
        """`query` as Arrow, where the backend can skip pandas (exact 64-bit integers with
        NULLs among them). Same errors as `query`."""
        return pa.Table.from_pandas(self.query(sql), preserve_index=False)

    @abstractmethod
    def exists(self, table: TableId) -> bool:
        """Whether the table exists."""

    @abstractmethod
    def schema(self, table: TableId) -> pa.Schema:
        """Arrow schema of the table. Raises TableNotFound."""

    def column_names(self, table: TableId, may_lag: bool = False) -> list[str] | None:
        """The table's column names, or None where it does not exist: what a check of an
        output table needs, in one look.

        Args:
            may_lag: the caller re-checks before it acts (a job's commit does): a backend that
                caches reads may answer from before a write it is still reading again."""
        try:
            return self.schema(table).names
        except TableNotFound:
            return None

    @abstractmethod
    def count_rows(self, table: TableId) -> int:
        """Number of rows. Raises TableNotFound."""

    @abstractmethod
    def write(
        self, data: pd.DataFrame | pa.Table, table: TableId, disposition: WriteDisposition
    ) -> int:
        """Write a small frame in one step (notebook helper, demo data); creates the table.

        Returns:
            Rows written.
        Raises:
            TableNotEmpty: WRITE_EMPTY and the table has rows.
            SchemaMismatch: WRITE_APPEND with columns the table does not have.
        """

    @abstractmethod
    def read_table(self, table: TableId, columns: list[str] | None = None) -> pa.Table:
        """Read a whole (small) table, e.g. the registry. Raises TableNotFound."""

    @abstractmethod
    def plan_read(
        self,
        table: TableId,
        columns: list[str],
        shards: int,
        scope: JobScope,
        exclude: KeyExclusion | None = None,
    ) -> ReadPlan:
        """Freeze a consistent read of `columns` of `table`, split into at most `shards` parts.

        The job layer plans once per job and keeps the plan, so shards of one job always read
        the same snapshot or read session.

        Args:
            exclude: leave out rows whose keys are already in another table (evaluated once,
                when the read is frozen).
        """

    @abstractmethod
    def read_shard(self, shard: dict[str, Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Stream one shard of a plan as record batches of at most `batch_rows` rows."""

    def check_shard(self, shard: dict[str, Any], scope: JobScope) -> None:
        """Refuse a shard that does not belong to `scope`'s job. A plan is read back from the
        job record in Redis, which is not trusted: a forged one must not make a worker read
        another job's or any other file. Backends whose shards name files override this.

        Raises:
            PermissionDenied: the shard reaches outside the job's staging.
        """
        return None  # shards of a read session name no file

    @abstractmethod
    def stage(
        self,
        scope: JobScope,
        shard_index: int,
        batches: Iterable[pa.RecordBatch],
        schema: pa.Schema,
    ) -> int:
        """Consume `batches` into the staging of (job, shard), replacing whatever an earlier
        attempt of the same shard staged. Nothing is visible in any user table.

        Returns:
            Rows staged.
        """

    @abstractmethod
    def staged_shards(self, scope: JobScope) -> set[int]:
        """Shard indexes whose staging is complete."""

    @abstractmethod
    def landing(
        self, scope: JobScope, target: TableId, shard_count: int
    ) -> contextlib.AbstractContextManager[OutputLanding]:
        """Meet the job's staged output (of `shard_count` shards) with its output table, for
        `mlsys.predict.commit` to land it. Everything done through the landing is one atomic step
        where the backend has transactions (DuckDB: committed when the block ends, rolled back
        when it raises); elsewhere each step is atomic by itself and `append_staged` is guarded."""

    @abstractmethod
    def discard(self, scope: JobScope) -> None:
        """Drop the job's snapshot and staging (after commit, failure or cancel)."""

    @abstractmethod
    def merge(self, table: TableId, rows: pa.Table, keys: list[str]) -> MergeResult:
        """Upsert `rows` into `table` by `keys`: insert new keys, update rows whose values
        differ, leave equal rows untouched (a no-change merge writes nothing). Creates the
        table from `rows.schema` when missing, and adds the nullable columns of `rows` that it
        lacks at its end (its older rows read NULL there): mlsys' own tables grow in place.

        Raises:
            SchemaMismatch: `rows` has a column the table lacks that is not nullable."""

    def session(self, write: bool = True) -> contextlib.AbstractContextManager[None]:
        """Group several short calls (e.g. the checks of one request) on one connection where
        the backend pays per connection; a no-op elsewhere. `write=False` promises that the
        calls only read, so the connection may share the warehouse with other readers."""
        return contextlib.nullcontext()

    def cache_reads(self, max_age: float) -> None:  # noqa: B027 - optional hook
        """Let this instance answer repeated reads (existence, schema, row counts, whole-table
        reads) from memory while the backend can tell that their tables did not change, for
        at most `max_age` seconds. A backend that cannot tell reads afresh (the default)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
