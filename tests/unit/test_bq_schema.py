"""Arrow -> BigQuery schema mapping: explicit types, never inferred from values."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pyarrow as pa
import pytest

from mlsys.errors import SchemaMismatch
from mlsys.ids import TableId
from mlsys.warehouse.batches import rebatch  # noqa: E402
from mlsys.warehouse.bq_schema import (
    arrow_schema,
    arrow_type,
    bq_fields,
    check_append,
    loadable_schema,
    null_counts,
    relaxed,
    to_loadable,
)

pytestmark = pytest.mark.unit


def _types(schema: pa.Schema) -> dict[str, str]:
    return {f["name"]: f["type"] for f in bq_fields(schema)}


def test_scalar_types_map_to_standard_sql_names():
    schema = pa.schema(
        {
            "i8": pa.int8(),
            "i64": pa.int64(),
            "u32": pa.uint32(),
            "f32": pa.float32(),
            "f64": pa.float64(),
            "b": pa.bool_(),
            "s": pa.string(),
            "ls": pa.large_string(),
            "bin": pa.binary(),
            "ts_utc": pa.timestamp("ns", tz="UTC"),
            "ts_zone": pa.timestamp("us", tz="Europe/Paris"),
            "ts_naive": pa.timestamp("us"),
            "d": pa.date32(),
            "t": pa.time64("us"),
            "num": pa.decimal128(38, 9),
            "big": pa.decimal128(38, 20),
            "cat": pa.dictionary(pa.int32(), pa.string()),
        }
    )
    assert _types(schema) == {
        "i8": "INT64",
        "i64": "INT64",
        "u32": "INT64",
        "f32": "FLOAT64",
        "f64": "FLOAT64",
        "b": "BOOL",
        "s": "STRING",
        "ls": "STRING",
        "bin": "BYTES",
        "ts_utc": "TIMESTAMP",
        "ts_zone": "TIMESTAMP",
        "ts_naive": "DATETIME",
        "d": "DATE",
        "t": "TIME",
        "num": "NUMERIC",
        "big": "BIGNUMERIC",
        "cat": "STRING",
    }


def test_every_column_is_nullable_so_nan_never_meets_required():
    frame = pd.DataFrame({"x": [1.0, math.nan, None], "n": [1, 2, 3]})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = bq_fields(table.schema)
    assert {f["mode"] for f in fields} == {"NULLABLE"}
    assert fields[0]["type"] == "FLOAT64"
    # pandas NaN arrives as NULL, which a NULLABLE FLOAT64 holds.
    assert table.column("x").null_count == 2


def test_all_null_column_takes_its_declared_arrow_type():
    table = pa.table({"p": pa.nulls(3, pa.float64()), "d": pa.nulls(3, pa.date32())})
    assert _types(table.schema) == {"p": "FLOAT64", "d": "DATE"}


def test_untyped_all_null_column_is_string_and_loads_as_string():
    frame = pd.DataFrame({"note": [None, None]})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert table.schema.field("note").type == pa.null()
    assert _types(table.schema) == {"note": "STRING"}
    loaded = to_loadable(table, loadable_schema(table.schema))
    assert loaded.schema.field("note").type == pa.string()
    assert loaded.column("note").null_count == 2


def test_nested_types_become_repeated_and_record():
    schema = pa.schema(
        {"tags": pa.list_(pa.string()), "pt": pa.struct({"x": pa.float64(), "y": pa.int32()})}
    )
    tags, pt = bq_fields(schema)
    assert tags == {"name": "tags", "type": "STRING", "mode": "REPEATED"}
    assert pt["type"] == "RECORD"
    assert [(f["name"], f["type"]) for f in pt["fields"]] == [("x", "FLOAT64"), ("y", "INT64")]


@pytest.mark.parametrize(
    "schema",
    [
        pa.schema({"bad name": pa.int64()}),
        pa.schema({"d": pa.duration("s")}),
        pa.schema({"ll": pa.list_(pa.list_(pa.int64()))}),
    ],
)
def test_what_bigquery_cannot_hold_is_refused(schema):
    with pytest.raises(SchemaMismatch):
        bq_fields(schema)


def test_to_loadable_casts_to_load_friendly_types():
    table = pa.table(
        {
            "u": pa.array([1, 2], pa.uint16()),
            "f": pa.array([1.5, None], pa.float32()),
            "ts": pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.UTC)] * 2, pa.timestamp("ns", "UTC")),
        }
    )
    loaded = to_loadable(table, loadable_schema(table.schema))
    assert loaded.schema == pa.schema(
        {"u": pa.int64(), "f": pa.float64(), "ts": pa.timestamp("us", tz="UTC")}
    )


def test_to_loadable_reports_missing_and_uncastable_columns():
    target = pa.schema({"a": pa.int64()})
    with pytest.raises(SchemaMismatch, match="missing"):
        to_loadable(pa.table({"b": [1]}), target)
    with pytest.raises(SchemaMismatch, match="cannot be stored"):
        to_loadable(pa.table({"a": ["x"]}), target)


def test_bigquery_fields_read_back_as_arrow():
    fields = [
        {"name": "n", "type": "INTEGER", "mode": "REQUIRED"},
        {"name": "x", "type": "FLOAT", "mode": "NULLABLE"},
        {"name": "when", "type": "TIMESTAMP"},
        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
        {"name": "r", "type": "RECORD", "fields": [{"name": "a", "type": "BOOLEAN"}]},
    ]
    schema = arrow_schema(fields)
    assert schema.field("n").type == pa.int64() and not schema.field("n").nullable
    assert schema.field("x").type == pa.float64()
    assert schema.field("when").type == pa.timestamp("us", tz="UTC")
    assert schema.field("tags").type == pa.list_(pa.string())
    assert schema.field("r").type == pa.struct({"a": pa.bool_()})
    assert arrow_type({"type": "GEOGRAPHY"}) == pa.string()


def test_round_trip_of_mapped_types_is_stable():
    schema = pa.schema({"a": pa.int64(), "b": pa.string(), "c": pa.timestamp("us", tz="UTC")})
    assert arrow_schema(bq_fields(schema)) == schema


def test_check_append_allows_untyped_nulls_and_ints_into_floats_only():
    table = TableId("proj", "d", "t")
    existing = [{"name": "x", "type": "FLOAT", "mode": "NULLABLE"}, {"name": "s", "type": "STRING"}]
    ok = pa.schema({"x": pa.int64(), "s": pa.null()})
    assert check_append(existing, ok, table) == existing
    with pytest.raises(SchemaMismatch, match="no column"):
        check_append(existing, pa.schema({"y": pa.int64()}), table)
    with pytest.raises(SchemaMismatch, match="is FLOAT"):
        check_append(existing, pa.schema({"x": pa.string()}), table)


def test_nullable_data_fits_required_columns_unless_it_holds_nulls():
    # The registry table Terraform creates has REQUIRED keys; the sync's data is nullable Arrow.
    table = TableId("proj", "d", "t")
    existing = [
        {"name": "k", "type": "STRING", "mode": "REQUIRED"},
        {"name": "v", "type": "INT64", "mode": "NULLABLE"},
    ]
    full = pa.table({"k": ["a", "b"], "v": [1, None]})
    assert check_append(existing, full.schema, table, null_counts(full)) == existing
    assert check_append(existing, full.schema, table) == existing  # unknown: BigQuery checks
    holes = pa.table({"k": ["a", None], "v": [1, 2]})
    with pytest.raises(SchemaMismatch, match="'k' of proj.d.t is REQUIRED.*1 NULL"):
        check_append(existing, holes.schema, table, null_counts(holes))
    with pytest.raises(SchemaMismatch, match="is STRING, the data has INT64"):
        check_append(existing, pa.schema({"k": pa.int64()}), table)


def test_lists_fit_only_repeated_columns():
    table = TableId("proj", "d", "t")
    existing = [{"name": "tags", "type": "STRING", "mode": "REPEATED"}]
    assert check_append(existing, pa.schema({"tags": pa.list_(pa.string())}), table)
    with pytest.raises(SchemaMismatch, match="REPEATED, the data has NULLABLE"):
        check_append(existing, pa.schema({"tags": pa.string()}), table)


def test_relaxed_turns_only_required_nullable():
    fields = [
        {"name": "a", "type": "STRING", "mode": "REQUIRED"},
        {"name": "b", "type": "STRING", "mode": "REPEATED"},
    ]
    assert [f["mode"] for f in relaxed(fields)] == ["NULLABLE", "REPEATED"]


@pytest.mark.parametrize("batch_rows", [1, 3, 4, 10, 100])
def test_rebatch_regroups_pages_into_bounded_batches(batch_rows):
    pages = [
        pa.record_batch({"a": pa.array(range(start, start + n), pa.int64())})
        for start, n in ((0, 3), (3, 0), (3, 5), (8, 2))
    ]
    batches = list(rebatch(pages, batch_rows))
    assert all(0 < b.num_rows <= batch_rows for b in batches)
    assert [v for b in batches for v in b.column("a").to_pylist()] == list(range(10))
    if batch_rows <= 10:
        assert all(b.num_rows == batch_rows for b in batches[:-1])
