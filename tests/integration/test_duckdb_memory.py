"""The embedded warehouse's long statements run under their own DuckDB memory caps, so their
memory does not grow with the table (bench/user_runs.py measures it)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from mlsys.ids import TableId
from mlsys.settings import Settings
from mlsys.warehouse import JobScope, KeyExclusion, open_warehouse
from mlsys.warehouse.duckdb import connection, landing
from mlsys.warehouse.duckdb import warehouse as warehouse_module

pytestmark = pytest.mark.integration

INPUT = TableId.parse("mlsys-local.t.passengers")
OUTPUT = TableId.parse("mlsys-local.t.predictions")


@pytest.fixture
def warehouse(tmp_path):
    settings = Settings(
        _env_file=None,
        MLSYS_HOME=str(tmp_path / "home"),
        MLSYS_DUCKDB_MEMORY_LIMIT="1GB",
        MLSYS_DUCKDB_SNAPSHOT_MEMORY="48MB",
        MLSYS_DUCKDB_COMMIT_MEMORY="96MB",
    )
    warehouse = open_warehouse(settings=settings)
    rows = pd.DataFrame({"PassengerId": range(1_000), "Age": [30.0] * 1_000})
    warehouse.write(rows, INPUT, "WRITE_TRUNCATE")
    return warehouse


@pytest.fixture
def caps(monkeypatch) -> dict[str, str]:
    """The memory cap DuckDB had for each statement that copies or lands rows, by its verb."""
    seen: dict[str, str] = {}
    real = connection.execute

    def observed(con, sql, params=None):
        verb = sql.split()[0]
        if verb in ("COPY", "CREATE", "INSERT") and "_mlsys_input" not in sql:
            seen[verb] = real(con, "SELECT current_setting('memory_limit')")[0][0]
        return real(con, sql, params)

    for module in (warehouse_module, landing):  # the snapshot's statements, the commit's
        monkeypatch.setattr(module, "execute", observed)
    return seen


def _mib(setting: str) -> float:
    number, unit = setting.split()
    return float(number) * {"MiB": 1, "GiB": 1024}[unit]


def test_a_snapshot_copies_under_its_own_cap_and_gives_the_session_its_cap_back(warehouse, caps):
    with warehouse.session(write=False):
        plan = warehouse.plan_read(INPUT, ["PassengerId", "Age"], 2, JobScope("j1", "dev"))
        after = warehouse._local.con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert plan.rows_total == 1_000
    assert _mib(caps["COPY"]) == pytest.approx(48e6 / 2**20, abs=0.1)
    assert _mib(after[0]) == pytest.approx(1e9 / 2**20, abs=2)


def test_an_incremental_snapshot_keeps_the_connection_cap_for_its_anti_join(warehouse, caps):
    warehouse.write(pd.DataFrame({"PassengerId": [1, 2], "ModelVersion": ["v1", "v1"]}), OUTPUT,
                    "WRITE_TRUNCATE")  # fmt: skip
    exclude = KeyExclusion(OUTPUT, ("PassengerId",), (("ModelVersion", "v1"),))
    plan = warehouse.plan_read(INPUT, ["PassengerId"], 1, JobScope("j2", "dev"), exclude)
    assert plan.rows_total == 998
    assert _mib(caps["COPY"]) == pytest.approx(1e9 / 2**20, abs=2)


def test_a_commit_lands_under_the_commit_cap(warehouse, caps):
    from mlsys.predict.commit import commit_output

    scope = JobScope("j3", "dev")
    plan = warehouse.plan_read(INPUT, ["PassengerId", "Age"], 1, scope)
    batches = [
        batch.append_column("JobId", pa.repeat(pa.scalar("j3"), batch.num_rows))
        for batch in warehouse.read_shard(plan.shards[0], 100)
    ]
    warehouse.stage(scope, 0, batches, batches[0].schema)
    result = commit_output(warehouse, scope, OUTPUT, 1, "WRITE_TRUNCATE")
    assert result.rows == 1_000
    assert _mib(caps["CREATE"]) == pytest.approx(96e6 / 2**20, abs=0.1)
