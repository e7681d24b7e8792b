"""The API's reads of the embedded warehouse are answered from memory while no mlsys write
changed their tables, and read afresh once one did (in any process)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from mlsys.ids import TableId
from mlsys.settings import Settings
from mlsys.warehouse import open_warehouse
from tests.services import wait_for

pytestmark = pytest.mark.integration

TABLE = TableId.parse("mlsys-local.t.rows")


@pytest.fixture
def settings(tmp_path):
    return Settings(_env_file=None, MLSYS_HOME=str(tmp_path / "h"))


@pytest.fixture
def warehouse(settings):
    warehouse = open_warehouse(settings=settings)
    warehouse.write(pd.DataFrame({"a": [1, 2, 3]}), TABLE, "WRITE_TRUNCATE")
    warehouse.cache_reads(max_age=60)
    return warehouse


@pytest.fixture
def opens(warehouse, monkeypatch) -> list[bool]:
    """One entry per time the cached warehouse opened the file."""
    seen: list[bool] = []
    real = warehouse._open

    def counted(write, attach=True):
        seen.append(write)
        return real(write, attach)

    monkeypatch.setattr(warehouse, "_open", counted)
    return seen


def _in_another_process(settings: Settings, code: str) -> None:
    """Run `code` with `warehouse`, `pd` and `TABLE` as another mlsys process would."""
    program = (
        "import sys, pandas as pd\n"
        "from mlsys.ids import TableId\n"
        "from mlsys.settings import Settings\n"
        "from mlsys.warehouse import open_warehouse\n"
        "warehouse = open_warehouse(settings=Settings(_env_file=None, MLSYS_HOME=sys.argv[1]))\n"
        f"TABLE = TableId.parse('{TABLE}')\n" + code
    )
    subprocess.run([sys.executable, "-c", program, str(settings.home)], check=True, timeout=120)


def test_repeated_checks_open_nothing(warehouse, opens):
    for _ in range(3):
        with warehouse.session(write=False):
            assert warehouse.exists(TABLE)
            assert warehouse.schema(TABLE).names == ["a"]
            assert warehouse.count_rows(TABLE) == 3
            assert warehouse.read_table(TABLE).num_rows == 3

    # The first round's four reads share one turn at the file; the later rounds open nothing.
    assert opens == [False]


def test_reads_outside_a_session_each_take_a_turn(warehouse, opens):
    assert warehouse.exists(TABLE)
    assert warehouse.schema(TABLE).names == ["a"]

    assert opens == [False, False]


def test_sessions_missing_at_once_beside_a_writer_all_finish(settings):
    """Threads in read sessions miss shared and own questions while another thread keeps
    writing: a session that holds its turn never waits on another reader, so no one waits on a
    writer that waits on it (a deadlock would end in BackendUnavailable after lock_wait)."""
    warehouse = open_warehouse(settings=settings)
    warehouse.lock_wait = 10
    tables = [TableId.parse(f"mlsys-local.t.out_{i}") for i in range(8)]
    for table in [TABLE, *tables]:
        warehouse.write(pd.DataFrame({"a": [1]}), table, "WRITE_TRUNCATE")
    warehouse.cache_reads(max_age=60)
    writer = open_warehouse(settings=settings)
    writer.lock_wait = 10
    stop = threading.Event()

    def write() -> int:
        written = 0
        while not stop.is_set():
            writer.write(pd.DataFrame({"a": [written]}), tables[written % 8], "WRITE_APPEND")
            written += 1
        return written

    def check(i: int) -> list[int]:
        # Each session's first miss takes its turn; its second question is another session's
        # first, which that session may be reading (or waiting to) at the same moment.
        with warehouse.session(write=False):
            return [warehouse.count_rows(tables[(i + step) % 8]) for step in (0, 1)]

    with ThreadPoolExecutor(9) as pool:
        writing = pool.submit(write)
        answers = [pool.submit(check, i) for i in range(400)]
        counts = [count for answer in answers for count in answer.result(timeout=60)]
        stop.set()
        assert writing.result(timeout=60) > 0
    assert len(counts) == 800 and min(counts) >= 1


def test_an_append_elsewhere_moves_the_rows_but_not_the_schema(warehouse, opens, settings):
    assert warehouse.count_rows(TABLE) == 3
    assert warehouse.schema(TABLE).names == ["a"]
    opens.clear()

    _in_another_process(
        settings, "warehouse.write(pd.DataFrame({'a': [4]}), TABLE, 'WRITE_APPEND')\n"
    )

    assert warehouse.count_rows(TABLE) == 4
    assert warehouse.read_table(TABLE).num_rows == 4
    assert warehouse.schema(TABLE).names == ["a"]
    assert len(opens) == 2  # the count and the read: the schema was still good


def test_a_replaced_table_is_read_again(warehouse, settings):
    assert warehouse.schema(TABLE).names == ["a"]

    _in_another_process(
        settings, "warehouse.write(pd.DataFrame({'b': [1]}), TABLE, 'WRITE_TRUNCATE')\n"
    )

    assert warehouse.schema(TABLE).names == ["b"]
    assert warehouse.count_rows(TABLE) == 1


def test_a_write_from_outside_mlsys_is_seen_once_answers_are_old(warehouse):
    warehouse.cache_reads(max_age=0.5)
    assert warehouse.count_rows(TABLE) == 3
    with duckdb.connect(str(warehouse.path)) as con:  # a DuckDB shell, say: counts nothing
        con.execute('INSERT INTO "mlsys-local.t".rows VALUES (9)')

    assert warehouse.count_rows(TABLE) == 3
    time.sleep(0.6)
    assert warehouse.count_rows(TABLE) == 4


def test_without_a_cache_every_read_opens(settings):
    warehouse = open_warehouse(settings=settings)
    warehouse.write(pd.DataFrame({"a": [1]}), TABLE, "WRITE_TRUNCATE")
    assert warehouse.count_rows(TABLE) == 1
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute('INSERT INTO "mlsys-local.t".rows VALUES (2)')
    assert warehouse.count_rows(TABLE) == 2


def test_a_job_s_commit_moves_its_output_s_rows_and_a_replace_its_schema(warehouse, settings):
    from mlsys.predict.commit import commit_output
    from mlsys.warehouse import JobScope

    worker = open_warehouse(settings=settings)  # a worker's own warehouse
    output = TableId.parse("mlsys-local.t.predictions")

    def commit(job_id: str, disposition: str) -> None:
        scope = JobScope(job_id, "dev")
        plan = worker.plan_read(TABLE, ["a"], 1, scope)
        batches = [
            b.append_column("JobId", pa.repeat(pa.scalar(job_id), b.num_rows))
            for b in worker.read_shard(plan.shards[0], 100)
        ]
        worker.stage(scope, 0, batches, batches[0].schema)
        commit_output(worker, scope, output, 1, disposition)

    commit("j1", "WRITE_APPEND")
    assert warehouse.count_rows(output) == 3
    assert warehouse.schema(output).names == ["a", "JobId"]
    rows, schema = _keys(worker, output)

    commit("j2", "WRITE_APPEND")
    assert warehouse.count_rows(output) == 6
    assert _keys(worker, output) == ((rows[0], rows[1] + 1), schema)

    commit("j3", "WRITE_TRUNCATE")
    assert warehouse.count_rows(output) == 3
    assert _keys(worker, output)[1] == (schema[0], schema[1] + 1)


def _keys(warehouse, table: TableId) -> tuple[tuple, tuple]:
    """The (rows, schema) version keys of `table` now."""
    versions = warehouse._versions
    now = versions.read()
    return versions.key(now, table, "rows"), versions.key(now, table, "schema")


def test_one_read_answers_every_table_of_a_dataset(warehouse, opens, settings):
    """A burst of submits to many output tables of one dataset: the first check reads the
    columns of all of them, and knows the tables it did not see do not exist; a table created
    later (by a job's commit) is read again once."""
    siblings = [TableId.parse(f"mlsys-local.t.out_{i}") for i in range(5)]
    for sibling in siblings:
        _in_another_process(
            settings,
            f"warehouse.write(pd.DataFrame({{'p': [1]}}), TableId.parse('{sibling}'), "
            "'WRITE_TRUNCATE')",
        )
    opens.clear()
    with warehouse.session(write=False):
        assert warehouse.column_names(siblings[0]) == ["p"]
    assert opens == [False]

    assert [warehouse.column_names(t) for t in siblings] == [["p"]] * 5
    assert warehouse.exists(TABLE) and all(warehouse.exists(t) for t in siblings)
    assert warehouse.column_names(TableId.parse("mlsys-local.t.later")) is None
    assert not warehouse.exists(TableId.parse("mlsys-local.t.never"))
    assert len(opens) == 1  # the dataset's read said neither exists

    _in_another_process(
        settings,
        "warehouse.write(pd.DataFrame({'q': [1], 'r': [2]}), "
        "TableId.parse('mlsys-local.t.later'), 'WRITE_TRUNCATE')",
    )
    assert warehouse.column_names(TableId.parse("mlsys-local.t.later")) == ["q", "r"]
    assert len(opens) == 2
    assert warehouse.column_names(siblings[3]) == ["p"]
    assert not warehouse.exists(TableId.parse("mlsys-local.t.never"))
    assert len(opens) == 2


def test_a_check_that_may_lag_answers_at_once_and_reads_again_behind(warehouse, settings):
    """The API's look at an output table (its job's commit checks again): after a write, the
    old answer comes at once while a thread reads the dataset again; a strict read waits."""
    later = TableId.parse("mlsys-local.t.lagging")
    assert warehouse.column_names(later, may_lag=True) is None
    _in_another_process(
        settings,
        f"warehouse.write(pd.DataFrame({{'q': [1]}}), TableId.parse('{later}'), 'WRITE_TRUNCATE')",
    )

    assert warehouse.column_names(later, may_lag=True) is None  # as it was, at once
    assert wait_for(lambda: warehouse.column_names(later, may_lag=True) == ["q"], timeout=30)
    _in_another_process(
        settings,
        f"warehouse.write(pd.DataFrame({{'s': [1]}}), TableId.parse('{later}'), 'WRITE_TRUNCATE')",
    )
    assert warehouse.column_names(later) == ["s"]  # strict: read again before answering


def test_a_new_dataset_in_every_check_does_not_grow_the_cache(warehouse, opens):
    """A caller naming another dataset in each request (one token can) costs a read each,
    never memory that stays: the process keeps a bounded number of dataset reads."""
    from mlsys.warehouse.duckdb.read_cache import MAX_ENTRIES, MAX_GROUPS

    asked = MAX_GROUPS * 3
    for i in range(asked):
        assert warehouse.column_names(TableId.parse(f"mlsys-local.ds_{i}.out")) is None
    cache = warehouse._cache
    assert len(opens) == asked  # each dataset was read once
    assert len(cache._groups) == MAX_GROUPS
    assert len(cache._answers) <= MAX_ENTRIES
    assert len(cache._reading) <= MAX_GROUPS + MAX_ENTRIES
    # Another table of a dataset read lately is answered from that read; of one read long
    # ago (its read dropped), by a new read.
    assert warehouse.column_names(TableId.parse(f"mlsys-local.ds_{asked - 1}.other")) is None
    assert len(opens) == asked
    assert warehouse.column_names(TableId.parse("mlsys-local.ds_0.other")) is None
    assert len(opens) == asked + 1
