"""mlsys' own tables: Terraform creates exactly what `mlsys.tables` defines."""

from __future__ import annotations

import json
import re

import pytest

from mlsys.registry import SCHEMA, SYNC_COLUMNS
from mlsys.tables import OWNED_TABLES, SCHEMA_DIR
from tests.infra import MODULE, resources

pytestmark = pytest.mark.unit

_FILE = re.compile(r'file\("\$\{path\.module\}/schemas/(?P<name>[a-z_]+)\.json"\)')


def _tables():
    """Table id -> its resource blocks (the plain one and its prevent_destroy twin)."""
    found: dict[str, list] = {}
    for block in resources(MODULE):
        if block.kind == "google_bigquery_table":
            found.setdefault(block.body["table_id"], []).append(block)
    return found


def test_terraform_defines_every_owned_table_and_no_other():
    assert set(_tables()) == set(OWNED_TABLES)


@pytest.mark.parametrize("name", sorted(OWNED_TABLES))
def test_terraform_schema_is_the_one_in_code(name):
    table, found = OWNED_TABLES[name], _tables()[name]
    on_disk = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    assert on_disk == list(table.fields), "run `uv run python -m mlsys.tables` and commit"
    assert len(found) == 2  # plain and protected
    for block in found:
        match = _FILE.fullmatch(block.body["schema"])
        assert match and match["name"] == name, "schema must be file() of its schemas/*.json"
        assert tuple(block.body.get("clustering", ())) == table.clustering
        assert block.body["dataset_id"] == "local.dataset.dataset_id"
        partitioning = block.body.get("time_partitioning")
        if table.partition_day is None:
            assert partitioning is None
        else:
            assert partitioning == [{"type": "DAY", "field": table.partition_day}]


def test_registry_code_writes_the_defined_columns():
    fields = OWNED_TABLES["model_registry"].fields
    assert SCHEMA.names == [f["name"] for f in fields]
    required = [f["name"] for f in fields if f["mode"] == "REQUIRED"]
    # The sync always fills the keys, and writes every column but the aliases.
    assert set(required) <= set(SYNC_COLUMNS) and "aliases" not in SYNC_COLUMNS
