"""Request models: identifiers checked by mlsys.ids, in the one spelling the document gives."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from mlsys.ids import TableId, VersionSpec
from web.schemas import (
    ALIAS_PATTERN,
    MODEL_NAME_PATTERN,
    TABLE_ID_PATTERN,
    VERSION_PATTERN,
    PredictRequest,
)

pytestmark = pytest.mark.unit

BASE = {
    "env": "dev",
    "input_table": "mlsys-local.titanic.passengers",
    "output_table": "mlsys-local.titanic.predictions",
    "model_name": "titanic-survival",
}


def _message(**change) -> str:
    with pytest.raises(ValidationError) as caught:
        PredictRequest.model_validate({**BASE, **change})
    (error,) = caught.value.errors()
    return f"{error['loc'][0]}: {error['ctx']['error'] if 'ctx' in error else error['msg']}"


def test_a_valid_request_holds_its_values_parsed_and_dumps_them_as_sent():
    request = PredictRequest.model_validate({**BASE, "model_version": "@champion"})

    # Parsed once here: the pipeline takes these as they are.
    assert request.input_table == TableId.parse(BASE["input_table"])
    assert request.model_version == VersionSpec(alias="champion")
    assert request.write_disposition == "WRITE_APPEND"
    dumped = request.model_dump(mode="json")
    assert dumped["input_table"] == BASE["input_table"]
    assert dumped["model_version"] == "champion"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"input_table": "`mlsys-local.titanic.passengers`"}, "input_table: Write it as"),
        ({"output_table": " mlsys-local.titanic.x"}, "output_table: Remove the surrounding"),
        ({"input_table": "titanic.passengers"}, "input_table: Invalid table id"),
        ({"model_name": "a/b"}, "model_name: Invalid model name"),
        ({"model_version": ""}, "model_version: Must not be empty"),
        ({"model_version": "v1 "}, "model_version: Remove the surrounding"),
        ({"id_columns": ["ok", "no;pe"]}, "id_columns: Invalid column name 'no;pe'"),
    ],
)
def test_identifier_errors_name_the_field_and_say_why(change, expected):
    assert _message(**change).startswith(expected)


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (
            TABLE_ID_PATTERN,
            ["my-proj.ds_1.t-2", "p1._._"],
            ["a.b.c", "1p.d.t", "p-.d.t", "pp.d-x.t"],
        ),
        (MODEL_NAME_PATTERN, ["titanic-survival", "m", "a_1"], ["-a", "A", "a/b", "a-"]),
        (
            VERSION_PATTERN,
            ["latest", "v3", "3", "@champion", "champion"],
            ["", " v1", "V1", "v1.0"],
        ),
        (ALIAS_PATTERN, ["champion", "@champion", "v0"], ["latest", "@latest", "v3", "3", "A"]),
    ],
)
def test_documented_patterns(pattern, good, bad):
    # JSON Schema's `$` ends the input (Python's also matches before a final newline).
    whole = pattern.removeprefix("^").removesuffix("$")
    assert [v for v in good if not re.fullmatch(whole, v)] == []
    assert [v for v in bad if re.fullmatch(whole, v)] == []
