"""The values of a predict job: what a caller asks for (`PredictSpec`), the same resolved
against the registry and the input table (`PreparedPredict`), and the output schema.

Parsed once at the edge (API, CLI, schedule) and typed inside; the job record holds their JSON,
read back typed by the worker and checked again, because a record in Redis is not trusted.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import pyarrow as pa

from mlsys.errors import InvalidRequest
from mlsys.ids import ModelRef, TableId, check_column
from mlsys.models import labels
from mlsys.predict.incremental import Mode, check_mode
from mlsys.predict.protect import check_job_tables
from mlsys.registry.pinned import PinnedModel
from mlsys.settings import Settings
from mlsys.warehouse.base import JOB_ID_COLUMN, WriteDisposition, check_disposition

PROBABILITY_COLUMN = "PredictionProbability"
METADATA_COLUMNS = ["PredictionTimestamp", "ModelName", "ModelVersion", JOB_ID_COLUMN]
MAX_ID_COLUMNS = 16

Progress = Callable[[int], None]
CancelCheck = Callable[[], bool]
#: Sees every batch's input and predictions (monitoring profiles them).
Observer = Callable[[pa.RecordBatch, pa.RecordBatch], None]


def _incremental(mode, key_columns, write_disposition) -> dict[str, Any]:
    checked, keys = check_mode(mode, key_columns, write_disposition)
    return {"mode": checked, "key_columns": keys}


@dataclass(frozen=True)
class PredictSpec:
    """What a caller asks for, validated: the job's parameters."""

    env: str
    input_table: TableId
    output_table: TableId
    model: ModelRef
    id_columns: tuple[str, ...] | None = None
    write_disposition: WriteDisposition = "WRITE_APPEND"
    shards: int | None = None
    mode: Mode = "full"
    key_columns: tuple[str, ...] | None = None  # incremental: default the id columns

    @classmethod
    def parse(
        cls,
        *,
        env: str,
        input_table: str | TableId,
        output_table: str | TableId,
        model_name: str,
        model_version: object = "latest",
        id_columns: list[str] | str | None = None,
        write_disposition: str = "WRITE_APPEND",
        shards: int | None = None,
        mode: str | None = None,
        key_columns: list[str] | str | None = None,
        settings: Settings,
    ) -> PredictSpec:
        """Build a spec from user input; every identifier is validated here (values the API's
        request models parsed already, TableId and VersionSpec, are taken as they are)."""
        if isinstance(id_columns, str):
            id_columns = [c.strip() for c in id_columns.split(",") if c.strip()]
        if id_columns is not None and len(id_columns) > MAX_ID_COLUMNS:
            raise InvalidRequest(f"At most {MAX_ID_COLUMNS} id_columns are allowed.")
        if shards is not None and not (1 <= int(shards) <= settings.max_shards):
            raise InvalidRequest(
                f"shards must be between 1 and {settings.max_shards} (MLSYS_MAX_SHARDS)."
            )
        inputs, outputs = TableId.parse(input_table), TableId.parse(output_table)
        check_job_tables(inputs, outputs, settings)
        return cls(
            env=settings.check_env(env),
            input_table=inputs,
            output_table=outputs,
            model=ModelRef.parse(model_name, model_version),
            id_columns=tuple(check_column(c) for c in id_columns) if id_columns else None,
            write_disposition=check_disposition(write_disposition),
            shards=int(shards) if shards is not None else None,
            **_incremental(mode, key_columns, write_disposition),
        )

    def to_json(self) -> dict[str, Any]:
        # A full run's parameters stay as they always were (idempotency keys compare them).
        extra = (
            {"mode": self.mode, "key_columns": list(self.key_columns or []) or None}
            if self.mode != "full"
            else {}
        )
        return {
            "env": self.env,
            "input_table": str(self.input_table),
            "output_table": str(self.output_table),
            "model_name": self.model.name,
            "model_version": str(self.model.version),
            "id_columns": list(self.id_columns) if self.id_columns else None,
            "write_disposition": self.write_disposition,
            "shards": self.shards,
            **extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], settings: Settings) -> PredictSpec:
        """Parse stored parameters again, with every check `parse` makes: where they were
        stored (Redis) is not trusted to hold only what the API accepted."""
        # A scheduled job's parameters also name their schedule (mlsys.jobs.schedules).
        fields = {k: v for k, v in data.items() if k not in ("schedule_id", "trigger")}
        return cls.parse(settings=settings, **fields)


@dataclass(frozen=True)
class PreparedPredict:
    """A spec resolved against the registry and the input table. A job records it once (its
    JSON) so that every shard task gets the same pinned model version and output schema."""

    spec: PredictSpec
    model: PinnedModel
    features: list[str]
    id_columns: list[str]
    target: str
    task: str
    rows_total: int
    output_schema_b64: str = ""
    reference_profile: dict[str, Any] | None = None  # training profile (mlsys.monitoring)

    @property
    def output_schema(self) -> pa.Schema:
        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(self.output_schema_b64)))

    @property
    def env(self) -> str:
        return self.spec.env

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**data, "spec": self.spec.to_json(), "model": self.model.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any], settings: Settings) -> PreparedPredict:
        """Read a job record's copy back, checking its spec again (`PredictSpec.from_json`):
        a record in Redis is not trusted to name only tables the API accepted."""
        return cls(
            **{
                **data,
                "spec": PredictSpec.from_json(data["spec"], settings),
                "model": PinnedModel.from_json(data["model"]),
            }
        )


def build_output_schema(
    input_schema: pa.Schema, id_columns: list[str], target: str, task: str, classes: list | None
) -> pa.Schema:
    fields = [pa.field(c, input_schema.field(c).type) for c in id_columns]
    fields.append(pa.field(target, labels.target_type(task, classes)))
    if task == "classification":
        fields.append(pa.field(PROBABILITY_COLUMN, pa.float64()))
    fields += [
        pa.field("PredictionTimestamp", pa.timestamp("us", tz="UTC")),
        pa.field("ModelName", pa.string()),
        pa.field("ModelVersion", pa.string()),
        pa.field(JOB_ID_COLUMN, pa.string()),
    ]
    return pa.schema(fields)
