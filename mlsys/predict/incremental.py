"""Incremental predictions: score only the input rows whose keys this model version has not
predicted into the output table yet.

The job's read is frozen with a `KeyExclusion` (output table, key columns, this model name and
version), so the anti-join runs in the warehouse when the input is snapshotted (DuckDB) or
queried into the job's snapshot table (BigQuery); no key ever travels through Python. The rest
of a job is unchanged: shards, leases and the one atomic commit keep it exactly-once, and a
job that finds no new key commits 0 rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from mlsys.errors import InvalidRequest
from mlsys.ids import TableId, check_column
from mlsys.registry.pinned import PinnedModel
from mlsys.warehouse.base import KeyExclusion

Mode = Literal["full", "incremental"]
MODES: tuple[str, ...] = ("full", "incremental")


def check_mode(
    mode: str | None, key_columns: Sequence[str] | str | None, write_disposition: str
) -> tuple[Mode, tuple[str, ...] | None]:
    """Validate `mode` and its key columns (at the edge, with the rest of a spec)."""
    mode = mode or "full"
    if mode not in MODES:
        raise InvalidRequest(f"Unknown mode {mode!r}.", hint=f"Use one of {', '.join(MODES)}.")
    if isinstance(key_columns, str):
        key_columns = [c.strip() for c in key_columns.split(",") if c.strip()]
    keys = tuple(check_column(c) for c in key_columns) if key_columns else None
    if mode == "full":
        if keys:
            raise InvalidRequest(
                "key_columns only applies to mode 'incremental'.",
                hint='Add "mode": "incremental", or leave key_columns out.',
            )
        return "full", None
    if write_disposition != "WRITE_APPEND":
        raise InvalidRequest(
            f"mode 'incremental' appends new keys; write_disposition {write_disposition} "
            "would not keep the earlier predictions.",
            hint="Use write_disposition WRITE_APPEND (the default) with mode 'incremental'.",
        )
    return "incremental", keys


def check_keys(keys: Sequence[str] | None, id_columns: list[str]) -> list[str]:
    """The job's key columns: given ones must be id columns (the output must carry them)."""
    chosen = list(keys or id_columns)
    outside = [k for k in chosen if k not in id_columns]
    if outside:
        raise InvalidRequest(
            f"key_columns {outside} are not id columns of the job, so the output table does "
            "not record them.",
            hint=f"Use key_columns among the id_columns {id_columns}, or add them to id_columns.",
        )
    return chosen


class IncrementalRequest(Protocol):
    """What `exclusion` reads of a job's spec (`mlsys.predict.spec.PredictSpec` has it)."""

    mode: str
    output_table: TableId
    key_columns: Sequence[str] | None


def exclusion(
    spec: IncrementalRequest, model: PinnedModel, id_columns: Sequence[str]
) -> KeyExclusion | None:
    """The read filter of a prepared job: None for a full run."""
    if spec.mode != "incremental":
        return None
    return KeyExclusion(
        table=spec.output_table,
        keys=tuple(check_keys(spec.key_columns, list(id_columns))),
        match=(("ModelName", model.model_name), ("ModelVersion", model.version)),
    )
