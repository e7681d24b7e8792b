"""An unknown scheme in MLSYS_WAREHOUSE or MLSYS_MODEL_STORE is a clear error naming both."""

from __future__ import annotations

import pytest

from mlsys.errors import InvalidRequest
from mlsys.settings import Settings
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("opener", "url", "words"),
    [
        (
            open_warehouse,
            "postgres://db",
            ["warehouse URL 'postgres://db'", "duckdb://", "bigquery://"],
        ),
        (open_warehouse, "warehouse.duckdb", ["warehouse URL", "MLSYS_WAREHOUSE"]),
        (open_store, "s3://bucket", ["model store URL 's3://bucket'", "file://", "gs://"]),
    ],
)
def test_an_unknown_scheme_names_the_setting_and_the_schemes_it_takes(tmp_path, opener, url, words):
    settings = Settings(_env_file=None, MLSYS_HOME=str(tmp_path))
    with pytest.raises(InvalidRequest) as raised:
        opener(url, settings)
    text = f"{raised.value} {raised.value.hint}"
    for word in words:
        assert word in text
    assert ("MLSYS_WAREHOUSE" in text) == (opener is open_warehouse)
