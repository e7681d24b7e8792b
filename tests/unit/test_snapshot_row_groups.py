"""A snapshot's row groups split into shards of about the same rows, so that no process of a
job is left running its last shard alone."""

from __future__ import annotations

import math

import pytest

from mlsys.warehouse.duckdb.warehouse import _row_group_rows, _split_row_groups

pytestmark = pytest.mark.unit


def _groups_as_written(rows: int, group: int) -> list[int]:
    """The row groups DuckDB writes for ROW_GROUP_SIZE `group`: whole vectors, last one short."""
    size = math.ceil(group / 2048) * 2048
    full, rest = divmod(rows, size)
    return [size] * full + ([rest] if rest else [])


def _shard_rows(rows: int, group: int, shards: int) -> list[int]:
    return [n for _groups, n in _split_row_groups(_groups_as_written(rows, group), shards)]


# The shapes `mlsys predict` plans on 2, 4 or 8 processes, and big service jobs.
SHAPES = [
    (1_000_000, 2),
    (2_000_000, 2),
    (3_000_000, 2),
    (5_000_000, 4),
    (10_000_000, 6),
    (10_000_000, 8),
    (20_000_000, 10),
    (100_000_000, 50),
    (100_000_000, 64),
]


@pytest.mark.parametrize(("rows", "shards"), SHAPES)
def test_shards_get_about_the_same_rows(rows: int, shards: int) -> None:
    group = _row_group_rows(rows, shards)
    assert group % 2048 == 0 and group <= 122_880 + 2048
    sizes = _shard_rows(rows, group, shards)
    assert sum(sizes) == rows and len(sizes) == shards
    assert max(sizes) / min(sizes) < 1.09, sizes


def test_each_shard_streams_in_several_reads() -> None:
    for rows, shards in SHAPES:
        group = _row_group_rows(rows, shards)
        parts = _split_row_groups(_groups_as_written(rows, group), shards)
        assert all(len(groups) >= 4 for groups, _n in parts)


def test_fixed_groups_left_one_process_running_alone() -> None:
    # What the fixed 122,880-row groups gave (the reason for the rule): at 1M rows on two
    # processes one shard had 1.6 times the rows of the other.
    old = _shard_rows(1_000_000, 122_880, 2)
    assert max(old) / min(old) > 1.5
    ours = _shard_rows(1_000_000, _row_group_rows(1_000_000, 2), 2)
    assert max(ours) / min(ours) < 1.01
