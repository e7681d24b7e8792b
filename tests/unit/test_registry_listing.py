"""SQL of a registry page and its page tokens, as strings."""

from __future__ import annotations

import pytest

from mlsys.errors import InvalidIdentifier, InvalidRequest
from mlsys.registry_listing import decode_token, encode_token, page_sql

pytestmark = pytest.mark.unit

TABLE = "mlsys-local.mlsys_dev.model_registry"


def test_first_page():
    assert page_sql(TABLE, "dev", 101, None, None) == (
        f"SELECT * FROM `{TABLE}` WHERE environment = 'dev' "
        "ORDER BY model_name, model_version LIMIT 101"
    )


def test_next_page_of_one_model_resumes_after_the_last_row():
    sql = page_sql(TABLE, "dev", 11, ("titanic-survival", 7), "titanic-survival")
    assert "model_name = 'titanic-survival' AND (model_name > 'titanic-survival' OR " in sql
    assert "(model_name = 'titanic-survival' AND model_version > 7))" in sql


def test_values_are_validated_before_they_are_written_in():
    with pytest.raises(InvalidRequest):
        page_sql(TABLE, "dev' OR '1'='1", 10, None, None)
    with pytest.raises(InvalidIdentifier):
        page_sql(TABLE, "dev", 10, ("x' OR 1=1 --", 1), None)


def test_tokens_round_trip_and_forgeries_are_refused():
    assert decode_token(encode_token("titanic-survival", 12)) == ("titanic-survival", 12)
    for forged in ("", "%%%", encode_token("Bad Name", 1), "WyJ4IiwiMSJd"):
        with pytest.raises(InvalidRequest, match="page_token"):
            decode_token(forged)
