"""Arrow <-> BigQuery schemas, as pure functions (no Cloud SDK: unit-tested anywhere).

BigQuery fields are handled in their REST form (`{"name", "type", "mode", "fields"}`), which
`google.cloud.bigquery.SchemaField.from_api_repr` reads. Writes always carry an explicit schema
derived from the Arrow type, never inferred from values: an all-NULL column keeps the type its
Arrow column declares, and every column is NULLABLE, so a float NaN (which pandas turns into
NULL) never trips a REQUIRED mode.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from mlsys.errors import InvalidIdentifier, SchemaMismatch
from mlsys.ids import TableId, check_column

Field = dict[str, Any]

# NUMERIC holds precision 38, scale 9: at most 29 integer digits.
_NUMERIC_SCALE = 9
_NUMERIC_INT_DIGITS = 29


def _scalar_type(t: pa.DataType, name: str) -> str:
    if pa.types.is_boolean(t):
        return "BOOL"
    if pa.types.is_integer(t):
        # uint64 values above 2**63-1 fail the cast in `to_loadable` with a clear error.
        return "INT64"
    if pa.types.is_floating(t):
        return "FLOAT64"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "STRING"
    if pa.types.is_null(t):
        # No type to take: NULL-typed columns (e.g. an all-None object column) become STRING.
        return "STRING"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "BYTES"
    if pa.types.is_timestamp(t):
        # BigQuery's TIMESTAMP is an instant; a zone-less Arrow timestamp is a civil DATETIME.
        return "TIMESTAMP" if t.tz is not None else "DATETIME"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_decimal(t):
        fits = t.scale <= _NUMERIC_SCALE and t.precision - t.scale <= _NUMERIC_INT_DIGITS
        return "NUMERIC" if isinstance(t, pa.Decimal128Type) and fits else "BIGNUMERIC"
    raise SchemaMismatch(
        f"Column {name!r} has Arrow type {t}, which has no BigQuery equivalent.",
        hint="Cast it to a number, string, bool, date or timestamp before writing.",
    )


def _field(name: str, t: pa.DataType, mode: str = "NULLABLE") -> Field:
    if pa.types.is_dictionary(t):
        return _field(name, t.value_type, mode)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        if mode == "REPEATED":
            raise SchemaMismatch(f"Column {name!r} is a list of lists, which BigQuery lacks.")
        return _field(name, t.value_type, "REPEATED")
    if pa.types.is_struct(t):
        children = [_field(_checked(f.name), f.type) for f in t]
        return {"name": name, "type": "RECORD", "mode": mode, "fields": children}
    return {"name": name, "type": _scalar_type(t, name), "mode": mode}


def _checked(name: str) -> str:
    try:
        return check_column(name)
    except InvalidIdentifier as exc:
        raise SchemaMismatch(exc.message, hint=exc.hint) from None


def bq_fields(schema: pa.Schema) -> list[Field]:
    """BigQuery fields (REST form) for an Arrow schema; every top-level column NULLABLE.

    Raises:
        SchemaMismatch: a column name is not a plain identifier, or a type has no BigQuery
            equivalent.
    """
    return [_field(_checked(f.name), f.type) for f in schema]


def _loadable_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type to write to Parquet so that BigQuery loads it as `bq_fields` says."""
    if pa.types.is_dictionary(t):
        return _loadable_type(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(_loadable_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _loadable_type(f.type)) for f in t])
    if pa.types.is_null(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t):
        return pa.float64()
    if pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.binary()
    if pa.types.is_timestamp(t):
        # BigQuery keeps microseconds; nanosecond Parquet timestamps are refused or truncated.
        return pa.timestamp("us", tz=t.tz)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_time(t):
        return pa.time64("us")
    return t


def loadable_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with every type replaced by the one BigQuery loads from Parquet as intended."""
    bq_fields(schema)  # refuse what BigQuery cannot hold before any data is written
    return pa.schema([pa.field(f.name, _loadable_type(f.type)) for f in schema])


def to_loadable(data: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """Cast `data` to `schema` (from `loadable_schema`), by column name.

    Raises:
        SchemaMismatch: a column is missing or cannot be cast.
    """
    table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
    columns = []
    for f in schema:
        if f.name not in table.column_names:
            raise SchemaMismatch(f"Column {f.name!r} is missing from the data.")
        column = table.column(f.name)
        try:
            columns.append(column if column.type == f.type else column.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaMismatch(
                f"Column {f.name!r} of type {column.type} cannot be stored as {f.type}: {exc}"
            ) from None
    return pa.Table.from_arrays(columns, schema=schema)


_ARROW_OF = {
    "INT64": pa.int64(),
    "INTEGER": pa.int64(),
    "FLOAT64": pa.float64(),
    "FLOAT": pa.float64(),
    "BOOL": pa.bool_(),
    "BOOLEAN": pa.bool_(),
    "STRING": pa.string(),
    "BYTES": pa.binary(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "DATETIME": pa.timestamp("us"),
    "DATE": pa.date32(),
    "TIME": pa.time64("us"),
    "NUMERIC": pa.decimal128(38, 9),
    "BIGNUMERIC": pa.decimal256(76, 38),
    # Read as text, the way the Storage Read API hands them out.
    "JSON": pa.string(),
    "GEOGRAPHY": pa.string(),
    "INTERVAL": pa.string(),
}


def arrow_type(field: Field) -> pa.DataType:
    """The Arrow type of one BigQuery field (REST form), honouring REPEATED."""
    kind = str(field.get("type", "")).upper()
    if kind in ("RECORD", "STRUCT"):
        t: pa.DataType = pa.struct(
            [pa.field(f["name"], arrow_type(f)) for f in field.get("fields", [])]
        )
    elif kind in _ARROW_OF:
        t = _ARROW_OF[kind]
    else:
        t = pa.string()
    return pa.list_(t) if str(field.get("mode", "")).upper() == "REPEATED" else t


def arrow_schema(fields: list[Field]) -> pa.Schema:
    """The Arrow schema of a BigQuery table (fields in REST form)."""
    return pa.schema(
        [
            pa.field(f["name"], arrow_type(f), nullable=str(f.get("mode")).upper() != "REQUIRED")
            for f in fields
        ]
    )


_SAME_TYPE = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "STRUCT": "RECORD"}


def _kind(field: dict) -> str:
    kind = str(field["type"]).upper()
    return _SAME_TYPE.get(kind, kind)


def null_counts(data: pa.Table | pa.RecordBatch) -> dict[str, int]:
    """NULLs per column: what decides whether nullable data fits REQUIRED columns."""
    return {name: data.column(name).null_count for name in data.column_names}


def _mode(field: dict) -> str:
    return str(field.get("mode") or "NULLABLE").upper()


def api_fields(meta: Any) -> list[dict]:
    """The fields of a table's metadata (a `bigquery.Table`), as the REST API spells them."""
    return [f.to_api_repr() for f in meta.schema]


def check_append(
    existing: list[dict],
    data: pa.Schema,
    table: TableId,
    nulls: dict[str, int] | None = None,
) -> list[dict]:
    """The table's fields, after checking that `data` adds no column and changes no type.

    An untyped (all-NULL) column takes the table's type; integers may go into FLOAT64. Modes:
    NULLABLE data fits a REQUIRED column when none of its values is NULL (`nulls`, from
    `null_counts`; when unknown, BigQuery itself refuses a NULL at write time, atomically), and
    REPEATED fits only REPEATED.

    Raises:
        SchemaMismatch: a new column, another type, a list for a scalar (or back), or NULLs
            for a REQUIRED column.
    """
    have = {f["name"]: f for f in existing}
    extra = [name for name in data.names if name not in have]
    if extra:
        raise SchemaMismatch(
            f"Table {table} has no column(s) {extra}.",
            hint=f"Its columns are {list(have)}; use WRITE_TRUNCATE to replace the table.",
        )
    for new in bq_fields(data):
        name = new["name"]
        old = have[name]
        untyped = pa.types.is_null(data.field(name).type)
        widened = (_kind(new), _kind(old)) == ("INT64", "FLOAT64")
        if not untyped and _kind(old) != _kind(new) and not widened:
            raise SchemaMismatch(
                f"Column {name!r} of {table} is {old['type']}, the data has {new['type']}."
            )
        if (_mode(old) == "REPEATED") != (_mode(new) == "REPEATED") and not untyped:
            raise SchemaMismatch(
                f"Column {name!r} of {table} is {_mode(old)}, the data has {_mode(new)}."
            )
        if _mode(old) == "REQUIRED" and nulls is not None and nulls.get(name, 0):
            raise SchemaMismatch(
                f"Column {name!r} of {table} is REQUIRED, but the data has "
                f"{nulls[name]} NULL(s) in it.",
                hint="Fill the column, or write to a table where it is NULLABLE.",
            )
    return existing


def relaxed(fields: list[dict]) -> list[dict]:
    """`fields` with REQUIRED turned NULLABLE: for mlsys' own temporary tables, whose rows
    then go into the real table, which enforces its modes."""
    return [{**f, "mode": "NULLABLE"} if _mode(f) == "REQUIRED" else f for f in fields]
