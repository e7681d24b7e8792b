"""Several processes share one DuckDB file at once: every operation waits its turn, none is lost."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mlsys.ids import TableId
from mlsys.warehouse.duckdb import DuckDBWarehouse
from tests.services import wait_for

pytestmark = pytest.mark.integration

PROCESSES = 3
ROUNDS = 8
WRITE_ROWS = 20
STAGE_ROWS = 10
PROJECT = "mlsys-local"

# One worker process: waits for the go file, then writes, reads, snapshots, stages, commits and
# merges in a tight loop. It counts the lock conflicts it met: turns it waited for on the
# warehouse's lock file, and failed DuckDB opens (there should be none: the queue comes first).
WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    import duckdb
    import pandas as pd
    import pyarrow as pa

    real_connect = duckdb.connect
    conflicts = 0
    failed_opens = 0

    def observed_connect(*args, **kwargs):
        global failed_opens
        try:
            return real_connect(*args, **kwargs)
        except duckdb.IOException as error:
            if "lock" in str(error).lower():
                failed_opens += 1
            raise

    duckdb.connect = observed_connect

    import contextlib

    from mlsys.warehouse.file_queue import FileTurnTimeout

    class ObservedQueue:
        def __init__(self, queue):
            self.queue = queue

        @contextlib.contextmanager
        def turn(self, write, timeout):
            global conflicts
            try:
                held = self.queue.turn(write, 0)
                held.__enter__()
            except FileTurnTimeout:
                conflicts += 1  # another process's call holds the file: wait for our turn
                held = self.queue.turn(write, timeout)
                held.__enter__()
            try:
                yield
            finally:
                held.__exit__(None, None, None)

    from mlsys.commit import commit_output
    from mlsys.ids import TableId
    from mlsys.warehouse import JOB_ID_COLUMN, JobScope
    from mlsys.warehouse.duckdb import DuckDBWarehouse

    db, staging, go, writer, rounds, write_rows, stage_rows = sys.argv[1:8]
    writer, rounds = int(writer), int(rounds)
    write_rows, stage_rows = int(write_rows), int(stage_rows)
    wh = DuckDBWarehouse(Path(db), Path(staging), "mlsys-local")
    wh._queue = ObservedQueue(wh._queue)
    shared = TableId("mlsys-local", "race", "shared")
    output = TableId("mlsys-local", "race", "output")
    registry = TableId("mlsys-local", "race", "registry")
    schema = pa.schema(
        [("writer", pa.int64()), ("round", pa.int64()), (JOB_ID_COLUMN, pa.string())]
    )

    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.005)
    started = time.time()
    for i in range(rounds):
        frame = pd.DataFrame({"writer": [writer] * write_rows, "round": [i] * write_rows})
        assert wh.write(frame, shared, "WRITE_APPEND") == write_rows
        assert wh.count_rows(shared) >= (i + 1) * write_rows
        mine = wh.query(
            f"SELECT COUNT(*) AS n FROM `mlsys-local.race.shared` WHERE writer = {writer}"
        )["n"][0]
        assert mine == (i + 1) * write_rows, mine

        scope = JobScope(f"job-{writer}-{i}", "dev")
        plan = wh.plan_read(shared, ["writer", "round"], 2, scope)
        seen = sum(b.num_rows for s in plan.shards for b in wh.read_shard(s, 7))
        assert seen == plan.rows_total >= (i + 1) * write_rows
        batch = pa.RecordBatch.from_arrays(
            [pa.array([writer] * stage_rows), pa.array([i] * stage_rows),
             pa.array([scope.job_id] * stage_rows)],
            schema=schema,
        )
        wh.stage(scope, 0, [batch], schema)
        result = commit_output(wh, scope, output, 1, "WRITE_APPEND")
        assert result.rows == stage_rows and not result.already_committed
        again = commit_output(wh, scope, output, 1, "WRITE_APPEND")  # a redelivered commit
        assert again.already_committed and again.rows == stage_rows
        wh.discard(scope)

        row = pa.table({"writer": [writer], "round": [i], "value": [f"w{writer}r{i}"]})
        merged = wh.merge(registry, row, ["writer", "round"])
        assert (merged.inserted, merged.updated) == (1, 0)
    print(json.dumps({"writer": writer, "conflicts": conflicts, "failed_opens": failed_opens,
                      "started": started, "finished": time.time()}), flush=True)
    """
)


@pytest.mark.slow
def test_processes_share_one_duckdb_file_without_losing_rows(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(db),
                str(tmp_path / "staging"),
                str(go),
                str(writer),
                str(ROUNDS),
                str(WRITE_ROWS),
                str(STAGE_ROWS),
            ],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer in range(PROCESSES)
    ]
    try:
        for proc in procs:  # every worker has imported everything: start them together
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        go.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"worker failed:\n{out}\n{err}"
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    # They really ran at the same time, and met each other's locks.
    assert max(r["started"] for r in results) < min(r["finished"] for r in results)
    assert sum(r["conflicts"] for r in results) > 0, results
    assert sum(r["failed_opens"] for r in results) == 0, results

    wh = DuckDBWarehouse(db, tmp_path / "staging", PROJECT)
    shared = wh.query(
        "SELECT writer, round, COUNT(*) AS n FROM `mlsys-local.race.shared` "
        "GROUP BY writer, round ORDER BY writer, round"
    )
    assert len(shared) == PROCESSES * ROUNDS
    assert (shared["n"] == WRITE_ROWS).all()

    output = wh.query(
        "SELECT JobId, COUNT(*) AS n, MIN(writer) AS w, MIN(round) AS r "
        "FROM `mlsys-local.race.output` GROUP BY JobId"
    )
    assert len(output) == PROCESSES * ROUNDS  # every job landed exactly once
    assert (output["n"] == STAGE_ROWS).all()
    assert sorted(output["JobId"]) == sorted(
        f"job-{w}-{r}" for w in range(PROCESSES) for r in range(ROUNDS)
    )

    registry = wh.read_table(TableId(PROJECT, "race", "registry")).to_pylist()
    assert sorted((r["writer"], r["round"]) for r in registry) == [
        (w, r) for w in range(PROCESSES) for r in range(ROUNDS)
    ]
    staging = tmp_path / "staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_a_held_lock_is_waited_for(tmp_path, monkeypatch):
    """One process holds the file until told to let go; the other's write meets the lock,
    keeps waiting while it is held, and succeeds once it is released."""
    db = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys\n"
            "con = duckdb.connect(sys.argv[1])\n"
            "con.execute('CREATE TABLE held (x INT)')\n"
            "print('holding', flush=True)\n"
            "sys.stdin.readline()\n"
            "con.close()\n",
            str(db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    conflicts = threading.Semaphore(0)
    real_connect = duckdb.connect

    def observed_connect(*args, **kwargs):
        try:
            return real_connect(*args, **kwargs)
        except duckdb.IOException:
            conflicts.release()
            raise

    monkeypatch.setattr(duckdb, "connect", observed_connect)
    wh = DuckDBWarehouse(db, tmp_path / "staging", PROJECT)
    table = TableId(PROJECT, "race", "waited")
    written: list[int] = []
    writer = threading.Thread(
        target=lambda: written.append(
            wh.write(pd.DataFrame({"x": [1, 2, 3]}), table, "WRITE_APPEND")
        )
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        writer.start()
        # Two failed attempts: the writer met the lock and retried, and is still waiting.
        assert conflicts.acquire(timeout=60) and conflicts.acquire(timeout=60)
        assert writer.is_alive() and written == []
        holder.stdin.write("release\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
        writer.join(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert written == [3]  # ...and then wrote
    assert wh.count_rows(table) == 3


@contextlib.contextmanager
def session_holder(tmp_path: Path, write: bool) -> Iterator[subprocess.Popen]:
    """Another mlsys process inside a warehouse session (read-only unless `write`) until the
    block ends."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from pathlib import Path\n"
            "from mlsys.warehouse.duckdb import DuckDBWarehouse\n"
            "wh = DuckDBWarehouse(Path(sys.argv[1]), Path(sys.argv[2]), 'mlsys-local')\n"
            "wh.query('SELECT 1')  # creates the file\n"
            "with wh.session(write=sys.argv[3] == 'write'):\n"
            "    wh.query('SELECT 1')\n"
            "    print('holding', flush=True)\n"
            "    sys.stdin.readline()\n",
            str(tmp_path / "warehouse.duckdb"),
            str(tmp_path / "staging"),
            "write" if write else "read",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield holder
        holder.stdin.write("release\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def _observe_failed_opens(monkeypatch) -> list[BaseException]:
    failed: list[BaseException] = []
    real_connect = duckdb.connect

    def observed_connect(*args, **kwargs):
        try:
            return real_connect(*args, **kwargs)
        except duckdb.IOException as error:
            failed.append(error)
            raise

    monkeypatch.setattr(duckdb, "connect", observed_connect)
    return failed


def _gate_taken(tmp_path: Path) -> bool:
    """Someone is getting in line (a writer waits for the readers inside to leave)."""
    fd = os.open(tmp_path / "warehouse.duckdb.gate", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_mlsys_processes_queue_on_the_lock_file_without_failed_opens(tmp_path, monkeypatch):
    """Another mlsys process in the middle of a writing call holds the file: a second one
    waits on the lock file (no failed DuckDB open, no backoff sleep) and runs once the first
    lets go."""
    failed_opens = _observe_failed_opens(monkeypatch)
    wh = DuckDBWarehouse(tmp_path / "warehouse.duckdb", tmp_path / "staging", PROJECT)
    table = TableId(PROJECT, "race", "queued")
    written: list[int] = []
    writer = threading.Thread(
        target=lambda: written.append(wh.write(pd.DataFrame({"x": [1]}), table, "WRITE_APPEND"))
    )
    with session_holder(tmp_path, write=True):
        writer.start()
        # Queued behind the holder's call: it has not written, and it never tried DuckDB's
        # file (it waits for its turn on the lock file).
        writer.join(timeout=1.0)
        assert writer.is_alive() and written == []
    writer.join(timeout=60)
    assert written == [1]
    assert failed_opens == []
    assert (tmp_path / "warehouse.duckdb.lock").exists()


def test_readers_share_the_file_and_a_waiting_writer_goes_before_later_readers(
    tmp_path, monkeypatch
):
    failed_opens = _observe_failed_opens(monkeypatch)
    wh = DuckDBWarehouse(tmp_path / "warehouse.duckdb", tmp_path / "staging", PROJECT)
    table = TableId(PROJECT, "race", "shared")
    wh.write(pd.DataFrame({"x": [1]}), table, "WRITE_TRUNCATE")
    finished: list[str] = []

    def write() -> None:
        wh.write(pd.DataFrame({"x": [2]}), table, "WRITE_APPEND")
        finished.append("writer")

    def read() -> None:
        finished.append(f"reader saw {wh.count_rows(table)}")

    writer, late_reader = threading.Thread(target=write), threading.Thread(target=read)
    with session_holder(tmp_path, write=False):
        # Another process reads: this one reads beside it, at once.
        assert wh.count_rows(table) == 1
        writer.start()
        wait_for(lambda: _gate_taken(tmp_path), what="the writer waiting for the reader")
        late_reader.start()  # comes after the waiting writer: it must not pass it
        late_reader.join(timeout=1.0)
        assert finished == [] and writer.is_alive() and late_reader.is_alive()
    writer.join(timeout=60)
    late_reader.join(timeout=60)
    assert finished == ["writer", "reader saw 2"]
    assert failed_opens == []
