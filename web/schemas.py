"""Request and response bodies of the API, as pydantic models.

They validate what callers send (unknown fields are refused) and are the single source of the
OpenAPI document's schemas. Identifiers are parsed here, once, by `mlsys.ids` (so every caller
gets that module's messages and hints): a validated request holds `TableId`s and `VersionSpec`s,
which `PredictSpec.parse` takes as they are; the document still shows them as strings.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
)

from mlsys.dispositions import WriteDisposition
from mlsys.errors import MlsysError
from mlsys.ids import TableId, VersionSpec, check_column, check_model_name
from mlsys.jobs import JobKind, JobState
from mlsys.predict import MAX_ID_COLUMNS

IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
# The syntax mlsys.ids accepts, spelled as JSON Schema patterns for the document (and for
# clients and fuzzers); the validators below call mlsys.ids itself, for its messages.
TABLE_ID_PATTERN = (
    r"^[a-z][a-z0-9-]{0,28}[a-z0-9]"  # project
    r"\.[A-Za-z_][A-Za-z0-9_]{0,1023}"  # dataset
    r"\.[A-Za-z_][A-Za-z0-9_-]{0,1023}$"  # table
)
MODEL_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"
VERSION_PATTERN = r"^(?:latest|v?[1-9][0-9]{0,8}|@?[a-z][a-z0-9_-]{0,62})$"
ALIAS_PATTERN = r"^(?!@?latest$)(?!@?v?[1-9][0-9]{0,8}$)@?[a-z][a-z0-9_-]{0,62}$"
COLUMN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,299}$"

_TABLE = "A warehouse table as project.dataset.table (BigQuery's form, on every backend)."
_ENV = "Environment name (MLSYS_ENVIRONMENTS), e.g. dev, staging or prod."
_MODEL = "Registered model name: lowercase letters, digits, '-' and '_', at most 64 characters."
_VERSION = "Version to use: vN (e.g. v3), latest (highest active version) or an alias (champion)."


def _checked(
    parse: Callable[[str], Any], canonical: Callable[[Any], str] | None = None, keep: bool = False
):
    """A validator running an mlsys.ids parser, its error becoming the field's message; with
    `keep`, the field holds what the parser returned."""

    def validate(value: str) -> Any:
        if not value:
            raise ValueError("Must not be empty.")
        try:
            parsed = parse(value)
        except MlsysError as error:
            raise ValueError(str(error)) from None
        if value != value.strip():
            raise ValueError("Remove the surrounding spaces.")
        if canonical and canonical(parsed) != value:
            raise ValueError(f"Write it as {canonical(parsed)!r}, without backticks.")
        return parsed if keep else value

    return AfterValidator(validate)


# Parsed values, shown as the strings they came from wherever a model is dumped to JSON.
_AS_TEXT = PlainSerializer(str, return_type=str, when_used="json")
TableName = Annotated[
    str,
    Field(max_length=2048, description=_TABLE, json_schema_extra={"pattern": TABLE_ID_PATTERN}),
    _checked(TableId.parse, str, keep=True),
    _AS_TEXT,
]
ModelName = Annotated[
    str,
    Field(max_length=128, description=_MODEL, json_schema_extra={"pattern": MODEL_NAME_PATTERN}),
    _checked(check_model_name),
]
VersionRef = Annotated[
    str,
    Field(max_length=128, description=_VERSION, json_schema_extra={"pattern": VERSION_PATTERN}),
    _checked(VersionSpec.parse, keep=True),
    _AS_TEXT,
]
ColumnName = Annotated[
    str, Field(json_schema_extra={"pattern": COLUMN_PATTERN}), _checked(check_column)
]


class Strict(BaseModel):
    """Base of request models: unknown fields are an error, not silently dropped, and a number
    is not written true or false."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_not_true_or_false(cls, value: Any, info: ValidationInfo) -> Any:
        # Python's bool is an int, so pydantic took JSON's true as 1: `"days": true` meant one
        # day and `"shards": true` one shard. Only a field that may be a bool takes one.
        if isinstance(value, bool) and info.field_name is not None:
            if not _admits_bool(cls.model_fields[info.field_name].annotation):
                raise ValueError("Input should be a number or text, not true or false")
        return value


def _admits_bool(annotation: Any) -> bool:
    if annotation is bool or annotation is Any:
        return True
    return any(_admits_bool(arg) for arg in typing.get_args(annotation))


# --- requests ---------------------------------------------------------------------------------
class PredictRequest(Strict):
    """A batch prediction: stream `input_table` through a model into `output_table`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "env": "dev",
                    "input_table": "mlsys-local.titanic.passengers",
                    "output_table": "mlsys-local.titanic.predictions",
                    "model_name": "titanic-survival",
                    "model_version": "latest",
                    "id_columns": ["PassengerId"],
                }
            ]
        },
    )

    env: str = Field(description=_ENV, max_length=64)
    input_table: TableName
    output_table: TableName
    model_name: ModelName
    model_version: VersionRef = "latest"
    id_columns: list[ColumnName] | None = Field(
        None,
        max_length=MAX_ID_COLUMNS,
        description="Input columns copied to the output to join predictions back "
        "(default: the model's metadata, else every input column that is not a feature).",
    )
    write_disposition: WriteDisposition = Field(
        "WRITE_APPEND",
        description="WRITE_APPEND adds rows; WRITE_TRUNCATE replaces the table; WRITE_EMPTY "
        "refuses a table that has rows.",
    )
    shards: int | None = Field(
        None,
        ge=1,
        description="Parallel parts to split the input into (default: by size, and at least "
        "one per worker slot once each gets a full batch).",
    )
    mode: Literal["full", "incremental"] = Field(
        "full",
        description="full scores every input row; incremental only the rows whose key_columns "
        "have no prediction from this model version in output_table yet (WRITE_APPEND only).",
    )
    key_columns: list[ColumnName] | None = Field(
        None,
        max_length=MAX_ID_COLUMNS,
        description="incremental: the columns identifying a row, among the id columns "
        "(default: all id columns).",
    )
    idempotency_key: str | None = Field(
        None,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="A retry with the same key returns the first job instead of a new one "
        "(also accepted as the Idempotency-Key header).",
    )


class PredictQuery(Strict):
    """The seed's GET /predict: the same fields as query parameters."""

    env: str = Field(description=_ENV, max_length=64)
    input_table: TableName
    output_table: TableName
    model_name: ModelName
    model_version: VersionRef = "latest"
    id_columns: str | None = Field(None, max_length=4096, description="Comma-separated id columns.")
    write_disposition: WriteDisposition = Field("WRITE_APPEND")
    shards: int | None = Field(None, ge=1)
    mode: Literal["full", "incremental"] = Field("full")
    key_columns: str | None = Field(
        None, max_length=4096, description="Comma-separated key columns (incremental)."
    )
    idempotency_key: str | None = Field(None, pattern=IDEMPOTENCY_KEY_PATTERN)


class RegistrySyncRequest(Strict):
    """Scan an environment's model store and merge what changed into its registry."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"env": "dev"}]})

    env: str = Field(description=_ENV, max_length=64)


class EnvQuery(Strict):
    """Which environment's registry to read."""

    env: str = Field(description=_ENV, max_length=64)


class ModelListQuery(Strict):
    """Which environment's registry to list, one page at a time."""

    env: str = Field(description=_ENV, max_length=64)
    page_size: int = Field(100, ge=1, le=1000, description="Versions per page (at most 1000).")
    page_token: str | None = Field(
        None,
        max_length=512,
        description="next_page_token of the previous page; none for the first page.",
    )


class AliasRequest(Strict):
    """Point an alias at a version."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"env": "dev", "version": "v1"}]}
    )

    env: str = Field(description=_ENV, max_length=64)
    version: VersionRef


class JobsQuery(Strict):
    """Filters and paging of GET /jobs."""

    state: JobState | None = Field(None, description="Only jobs in this state.")
    kind: JobKind | None = Field(None, description="Only jobs of this kind.")
    limit: int = Field(50, ge=1, le=500, description="At most this many, most recent first.")
    page_token: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[0-9]{1,20}\.[0-9a-f]{1,128}$",
        description="next_page_token of the previous page.",
    )


# --- responses --------------------------------------------------------------------------------
class JobAccepted(BaseModel):
    """A job was queued (202), or an idempotent retry found the first one (200)."""

    job_id: str
    status_url: str = Field(description="Where to follow the job: GET it.")


class ModelVersion(BaseModel):
    """One registered model version."""

    model_name: str
    model_version: str = Field(description="vN")
    environment: str
    status: str = Field(description="active, missing (gone from the store) or invalid.")
    aliases: list[str]
    uri: str
    file_size_bytes: int
    sha256: str
    generation: int | None
    uploader: str | None
    upload_timestamp: str | None
    registered_at: str | None
    updated_at: str | None
    metadata: dict[str, Any]


class ModelList(BaseModel):
    """One page of the registered versions in an environment, flat, by name then version."""

    env: str
    models: list[ModelVersion]
    next_page_token: str | None = Field(
        description="Pass as page_token for the next page; null on the last page."
    )


class ModelVersions(BaseModel):
    """The versions of one model in an environment."""

    env: str
    model_name: str
    versions: list[ModelVersion]


class Health(BaseModel):
    status: Literal["ok"]


class Check(BaseModel):
    ok: bool
    seconds: float
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, Check]


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An error, as application/problem+json (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(
        None, description="Each invalid field, for validation errors."
    )
