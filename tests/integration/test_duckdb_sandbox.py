"""DuckDB in mlsys touches no file but its own (#11 §7).

Attack: `mlsys query` / `bq_get` on the embedded warehouse ran several statements and DuckDB's
file functions (`COPY ... TO`, `read_csv('/etc/...')`, `INSTALL/LOAD`). Every connection mlsys
opens now has external access off (only its staging folder is reachable), and user SQL is
exactly one query.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlsys.errors import InvalidRequest, PermissionDenied
from mlsys.ids import TableId
from mlsys.settings import Settings
from mlsys.warehouse import open_warehouse

pytestmark = pytest.mark.integration

MLSYS = Path(sys.executable).parent / "mlsys"


def _hostile(outside: Path) -> list[str]:
    return [
        "SELECT * FROM read_csv('/etc/passwd', sep = ':')",
        "SELECT * FROM read_text('/etc/hostname')",
        f"SELECT * FROM read_parquet('{outside}/*.parquet')",
    ]


@pytest.fixture
def warehouse(tmp_path):
    settings = Settings(_env_file=None, MLSYS_HOME=str(tmp_path / "home"))
    warehouse = open_warehouse(settings=settings)
    warehouse.write(pd.DataFrame({"a": [1, 2]}), TableId.parse("mlsys-local.t.x"), "WRITE_TRUNCATE")
    return warehouse


def test_file_functions_are_refused(warehouse, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    for sql in _hostile(outside):
        with pytest.raises(PermissionDenied, match="disabled"):
            warehouse.query(sql)
    assert warehouse.query("SELECT sum(a) AS s FROM `mlsys-local.t.x`")["s"].tolist() == [3]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; SELECT 2",
        "SELECT 1; DROP TABLE `mlsys-local.t.x`",
        "COPY `mlsys-local.t.x` TO '/tmp/stolen.csv'",
        "DROP TABLE `mlsys-local.t.x`",
        "ATTACH '/tmp/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
    ],
)
def test_only_one_query_runs(warehouse, sql):
    with pytest.raises((InvalidRequest, PermissionDenied)):
        warehouse.query(sql)
    assert warehouse.query("SELECT count(*) AS n FROM `mlsys-local.t.x`")["n"].tolist() == [2]


def test_a_connection_cannot_turn_access_back_on(warehouse):
    def attempt(con):
        for sql in ("SET enable_external_access = true", "SET allowed_directories = ['/']"):
            with pytest.raises(Exception, match="(?i)cannot"):
                con.execute(sql)
        return con.execute("SELECT current_setting('enable_external_access')").fetchone()[0]

    assert warehouse._run(attempt) is False


def test_mlsys_query_refuses_copy_and_file_functions_in_one_line(tmp_path):
    home = tmp_path / "home"
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "MLSYS_HOME": str(home)}
    target = tmp_path / "stolen.csv"
    for sql in (
        f"COPY (SELECT 1) TO '{target}'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT 1; SELECT 2",
    ):
        done = subprocess.run(
            [str(MLSYS), "query", sql],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, (sql, done.stdout, done.stderr)
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert not target.exists()
