"""Short reads reuse a thread's in-memory DuckDB with the file attached for the call only; a
forked child never touches an instance it inherited."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from mlsys.ids import TableId
from mlsys.settings import Settings
from mlsys.warehouse import open_warehouse
from mlsys.warehouse.duckdb import readers

pytestmark = pytest.mark.integration

TABLE = TableId.parse("mlsys-local.t.rows")


@pytest.fixture
def warehouse(tmp_path):
    warehouse = open_warehouse(settings=Settings(_env_file=None, MLSYS_HOME=str(tmp_path / "h")))
    warehouse.write(pd.DataFrame({"a": [1, 2, 3]}), TABLE, "WRITE_TRUNCATE")
    return warehouse


def _instance(warehouse):
    return warehouse._reads._local.owned.con


def test_reads_reuse_one_instance_and_leave_the_file_free_between_calls(warehouse):
    assert warehouse.count_rows(TABLE) == 3
    first = _instance(warehouse)
    assert warehouse.schema(TABLE).names == ["a"]
    assert _instance(warehouse) is first

    # Another process may write the file between two reads: it is not held.
    code = (
        "import duckdb, sys\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "con.execute('INSERT INTO \"mlsys-local.t\".rows VALUES (4)')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(warehouse.path)], check=True, timeout=60)
    assert warehouse.count_rows(TABLE) == 4


def test_a_thread_s_instance_is_closed_when_the_thread_ends(warehouse):
    # Other tests' threads may open or close their own instances meanwhile: follow this
    # thread's instance by its token, not the count of all.
    before = set(readers._LIVE)
    seen = []
    opened: set[int] = set()

    def read():
        seen.append(warehouse.count_rows(TABLE))
        opened.update(set(readers._LIVE) - before)

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    gc.collect()

    assert seen == [3]
    assert len(opened) == 1  # the thread read through an instance of its own...
    assert not opened & set(readers._LIVE)  # ...closed when the thread ended


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_reads_with_its_own_instance_and_exits(warehouse):
    assert warehouse.count_rows(TABLE) == 3  # the parent holds a live instance now
    inherited = _instance(warehouse)
    pid = os.fork()
    if pid == 0:  # the child: any failure is its exit code, never an exception here
        code = 1
        try:
            rows = warehouse.count_rows(TABLE)
            own = _instance(warehouse)
            kept = any(con is inherited for con in readers._INHERITED)
            code = 0 if rows == 3 and own is not inherited and kept else 2
            del warehouse, own, inherited
            gc.collect()  # dropping the warehouse must not close what the parent owns
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert warehouse.count_rows(TABLE) == 3  # the parent's instance still works
    assert _instance(warehouse) is inherited
