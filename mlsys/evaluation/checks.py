"""Refuse bad input before any metric is computed, with messages that say how to fix it.

- an output table mlsys did not write (no PredictionTimestamp, ModelName, ModelVersion, JobId);
- key columns missing from a table, or of other types in the two tables;
- a label column missing, or of a type the predictions cannot be compared with;
- a labels table with duplicate keys (each prediction would be counted once per copy): the
  count of duplicated keys and one example;
- no key overlap: predictions in the window, none of them with a label.

What the checks settle (columns, task, window) is the `PreparedEvaluation` a job runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from mlsys.errors import InvalidRequest, SchemaMismatch
from mlsys.evaluation import sql
from mlsys.evaluation.spec import EvaluateSpec
from mlsys.warehouse.base import JOB_ID_COLUMN, Warehouse

#: Columns every table mlsys' predict jobs write carries.
MLSYS_COLUMNS = (sql.TIMESTAMP, sql.MODEL_NAME, sql.MODEL_VERSION, JOB_ID_COLUMN)
_OWN = {*MLSYS_COLUMNS, sql.PROBABILITY}


@dataclass(frozen=True)
class PreparedEvaluation:
    """A spec checked against its tables: what the job's queries read."""

    spec: EvaluateSpec
    join: sql.JoinSpec
    task: str

    def to_json(self) -> dict[str, Any]:
        join = self.join
        return {
            "task": self.task,
            "key_columns": list(join.keys),
            "label_column": join.label,
            "prediction_column": join.prediction,
            "since": join.since.isoformat(),
            "until": join.until.isoformat(),
        }


def _family(data_type: pa.DataType) -> str:
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_integer(data_type):
        return "integer"
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "float"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "string"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    if pa.types.is_date(data_type):
        return "date"
    return str(data_type)


def _comparable(a: pa.DataType, b: pa.DataType) -> bool:
    families = {_family(a), _family(b)}
    return len(families) == 1 or families == {"integer", "float"}


def _prediction_column(spec: EvaluateSpec, schema: pa.Schema) -> str:
    """The named column, else the one mlsys writes before its own columns."""
    if spec.prediction_column is not None:
        if spec.prediction_column not in schema.names:
            raise SchemaMismatch(
                f"Output table {spec.output_table} has no column {spec.prediction_column}.",
                hint=f"It has {schema.names}.",
            )
        return spec.prediction_column
    anchor = sql.PROBABILITY if sql.PROBABILITY in schema.names else sql.TIMESTAMP
    index = schema.names.index(anchor)
    if index == 0 or schema.names[index - 1] in _OWN:
        raise InvalidRequest(
            f"Could not tell which column of {spec.output_table} holds the predictions.",
            hint="Pass prediction_column (the model's target column).",
        )
    return schema.names[index - 1]


def _key_columns(
    spec: EvaluateSpec, outputs: pa.Schema, labels: pa.Schema, skip: set[str]
) -> tuple[str, ...]:
    if spec.key_columns is not None:
        keys = spec.key_columns
        for table, schema in ((spec.output_table, outputs), (spec.labels_table, labels)):
            missing = [k for k in keys if k not in schema.names]
            if missing:
                raise SchemaMismatch(
                    f"Table {table} lacks key column(s) {missing}.",
                    hint=f"It has {schema.names}.",
                )
    else:
        keys = tuple(c for c in outputs.names if c in labels.names and c not in skip | _OWN)
        if not keys:
            raise InvalidRequest(
                f"{spec.output_table} and {spec.labels_table} share no key column.",
                hint="Pass key_columns naming the columns that identify a row in both.",
            )
    for key in keys:
        a, b = outputs.field(key).type, labels.field(key).type
        if not _comparable(a, b):
            raise SchemaMismatch(
                f"Key column {key} is {a} in {spec.output_table} but {b} in "
                f"{spec.labels_table}: rows could not be matched.",
                hint="Give the labels table keys of the same type as the predictions'.",
            )
    return keys


def check_schemas(
    spec: EvaluateSpec, warehouse: Warehouse, now: datetime | None = None
) -> PreparedEvaluation:
    """Everything the two tables' schemas can tell (no table is scanned).

    Raises:
        TableNotFound: either table does not exist.
        InvalidRequest: the output table was not written by mlsys, or the columns are unclear.
        SchemaMismatch: a key or label column is missing or of an incomparable type.
    """
    outputs = warehouse.schema(spec.output_table)
    missing = [c for c in MLSYS_COLUMNS if c not in outputs.names]
    if missing:
        raise InvalidRequest(
            f"Table {spec.output_table} was not written by mlsys: it lacks {missing}.",
            hint="Evaluate the output_table of a predict job (it carries PredictionTimestamp, "
            "ModelName, ModelVersion and JobId beside each prediction).",
        )
    labels = warehouse.schema(spec.labels_table)
    prediction = _prediction_column(spec, outputs)
    label = spec.label_column or prediction
    if label not in labels.names:
        raise SchemaMismatch(
            f"Labels table {spec.labels_table} has no column {label}.",
            hint=f"Pass label_column (it has {labels.names}).",
        )
    task = "classification" if sql.PROBABILITY in outputs.names else "regression"
    predicted_type, label_type = outputs.field(prediction).type, labels.field(label).type
    if task == "regression" and _family(label_type) not in ("integer", "float"):
        raise SchemaMismatch(
            f"Label column {label} of {spec.labels_table} is {label_type}; a regression "
            "model's predictions are numbers.",
            hint="Name a numeric label column (label_column).",
        )
    # Classes are compared as text in the warehouse: 1 and 1.0 would differ, so the two
    # columns must hold the same kind of value.
    if task == "classification" and _family(predicted_type) != _family(label_type):
        raise SchemaMismatch(
            f"Label column {label} of {spec.labels_table} is {label_type}, but the predicted "
            f"classes in {prediction} are {predicted_type}: they could never be equal.",
            hint="Store the labels with the type of the model's classes.",
        )
    keys = _key_columns(spec, outputs, labels, {prediction, label})
    since, until = spec.window(now)
    join = sql.JoinSpec(
        output=spec.output_table,
        labels=spec.labels_table,
        keys=keys,
        prediction=prediction,
        label=label,
        since=since,
        until=until,
        has_probability=task == "classification",
        model_name=spec.model_name,
        model_version=spec.model_version,
    )
    return PreparedEvaluation(spec=spec, join=join, task=task)


def check_labels(prepared: PreparedEvaluation, warehouse: Warehouse) -> None:
    """Scan the labels for duplicate keys and the window for labelled predictions.

    Raises:
        InvalidRequest: duplicate keys in the labels, no prediction in the window, or none of
            the window's predictions has a label.
    """
    join = prepared.join
    found = warehouse.query(sql.duplicate_keys(join.labels, join.keys))
    if len(found):
        row = found.iloc[0]
        example = ", ".join(f"{k}={_show(row[k])}" for k in join.keys)
        raise InvalidRequest(
            f"Labels table {join.labels} has {int(row['duplicated'])} key value(s) that appear "
            f"more than once (e.g. {example}: {int(row['copies'])} rows); each prediction "
            "would be counted once per copy.",
            hint="Keep one label per key, or pass key_columns that identify a row.",
        )
    overlap = warehouse.query(sql.window_overlap(join)).iloc[0]
    window = f"between {join.since.isoformat()} and {join.until.isoformat()}"
    if not int(overlap["predictions"]):
        raise InvalidRequest(
            f"{join.output} has no predictions {window}"
            + (f" from {join.model_name}" if join.model_name else "")
            + ".",
            hint="Widen the window (since, until, days) or shorten label_delay.",
        )
    if not int(overlap["matched"]):
        keys = ", ".join(join.keys)
        raise InvalidRequest(
            f"No key overlap: none of the predictions in {join.output} {window} has a label "
            f"in {join.labels} (matched on {keys}).",
            hint="Check key_columns, and that the labels cover the predictions' rows.",
        )


def _show(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "NULL"
    return repr(value.item() if hasattr(value, "item") else value)


def prepare_evaluation(
    spec: EvaluateSpec, warehouse: Warehouse, now: datetime | None = None
) -> PreparedEvaluation:
    """All checks: schemas, then duplicate labels and key overlap (two scans)."""
    with warehouse.session(write=False):
        prepared = check_schemas(spec, warehouse, now)
        check_labels(prepared, warehouse)
    return prepared
