"""The API's read cache: answers kept while the table's version holds, one read per miss."""

from __future__ import annotations

import threading
import time

import pytest

from mlsys.ids import TableId
from mlsys.warehouse.duckdb.read_cache import ReadCache, TableVersions

pytestmark = pytest.mark.unit

TABLE = TableId.parse("mlsys-local.t.rows")


@pytest.fixture
def cache(tmp_path) -> ReadCache:
    return ReadCache(TableVersions(tmp_path / "warehouse.duckdb"), max_age=60)


def test_threads_that_miss_together_read_once(cache):
    reads, started = [], threading.Event()

    def slow_read() -> int:
        reads.append(1)
        started.set()
        time.sleep(0.2)  # the others arrive while this read is under way
        return 3

    answers: list[int] = []

    def ask() -> None:
        answers.append(cache.get(("count", TABLE), TABLE, "rows", slow_read))

    first = threading.Thread(target=ask)
    first.start()
    started.wait(5)
    others = [threading.Thread(target=ask) for _ in range(7)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(10)

    assert answers == [3] * 8
    assert len(reads) == 1


def test_a_change_of_rows_is_read_again_but_not_a_schema_question(cache):
    cache.versions.bump(TABLE, schema=True)  # the table was written once: counting has begun
    count, schema = iter([3, 4]), iter([["a"], ["b"]])
    ask_count = lambda: cache.get(("count", TABLE), TABLE, "rows", lambda: next(count))  # noqa: E731
    ask_schema = lambda: cache.get(("schema", TABLE), TABLE, "schema", lambda: next(schema))  # noqa: E731
    assert (ask_count(), ask_schema()) == (3, ["a"])

    cache.versions.bump(TABLE, schema=False)

    assert (ask_count(), ask_schema()) == (4, ["a"])
