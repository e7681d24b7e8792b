"""The `mlsys` command as a user runs it: the venv's console script, in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlsys.ids import TableId
from mlsys.warehouse.duckdb import DuckDBWarehouse
from tests.services import isolated_env

pytestmark = pytest.mark.integration

MLSYS = Path(sys.executable).parent / "mlsys"
ROWS = 5_000
PASSENGERS = "mlsys-local.titanic.passengers"
PREDICTIONS = "mlsys-local.titanic.predictions"
TIMEOUT = 180


def cli_env(home: Path) -> dict[str, str]:
    """The machine's environment without any mlsys configuration, MLSYS_HOME in tmp."""
    env = isolated_env()
    env["MLSYS_HOME"] = str(home)
    env["COLUMNS"] = "120"
    return env


def start(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(MLSYS), *args],
        cwd=home.parent,  # no stray .env
        env=cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"mlsys {proc.args[1:]} timed out:\n{out}\n{err}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def mlsys(home: Path, *args: str) -> subprocess.CompletedProcess:
    result = finish(start(home, *args))
    assert result.returncode == 0, f"mlsys {args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A home where `mlsys demo` has run twice, plus an input table that lacks a feature."""
    home = tmp_path_factory.mktemp("cli") / "mlsys-home"
    first = mlsys(home, "demo", "--rows", str(ROWS))
    assert "Training a random forest" in first.stdout
    second = mlsys(home, "demo", "--rows", str(ROWS))
    home.joinpath("demo-outputs.json").write_text(json.dumps([first.stdout, second.stdout]))

    wh = warehouse(home)
    passengers = wh.read_table(TableId.parse(PASSENGERS)).to_pandas()
    wh.write(
        passengers.drop(columns=["Fare"]),
        TableId.parse("mlsys-local.titanic.no_fare"),
        "WRITE_EMPTY",
    )
    return home


def warehouse(home: Path) -> DuckDBWarehouse:
    """The CLI's warehouse file, opened by this process (one short connection per call)."""
    return DuckDBWarehouse(home / "warehouse.duckdb", home / "staging", "mlsys-local")


def count(home: Path, table: str, where: str = "TRUE") -> int:
    return int(warehouse(home).query(f"SELECT COUNT(*) AS n FROM `{table}` WHERE {where}")["n"][0])


def test_demo_twice_keeps_v1_and_prints_a_summary(home):
    first, second = json.loads(home.joinpath("demo-outputs.json").read_text())
    assert "keeping it" not in first
    assert "titanic-survival/v1 is already in" in second and "keeping it" in second
    assert "Training" not in second
    for out in (first, second):
        assert f"5/5 Done: {ROWS:,} predictions by titanic-survival/v1" in out
        assert f"Output: {PREDICTIONS}" in out
        assert "mlsys query" in out
    assert (home / "warehouse.duckdb").exists()
    assert (home / "models" / "mlsys-models-dev" / "titanic-survival" / "v1" / "model.pkl").exists()
    assert not (home / "models" / "mlsys-models-dev" / "titanic-survival" / "v2").exists()


QUERY = f"SELECT Survived, COUNT(*) AS n FROM `{PREDICTIONS}` GROUP BY Survived ORDER BY Survived"
DASHES = (
    f"predict --env dev --input-table {PASSENGERS} --output-table mlsys-local.titanic.cli_dash "
    "--model-name titanic-survival --model-version v1"
).split()
SEED_SPELLING = (
    f"predict --env dev --input_table {PASSENGERS} --output_table mlsys-local.titanic.cli_seed "
    "--model_name titanic-survival --model_version v1"
).split()
PREDICT = ["predict", "--env", "dev", "--output-table", "mlsys-local.titanic.err_out"]
BAD_INPUTS = {
    "unknown-env": (
        ["predict", "--env", "qa", "--input-table", PASSENGERS, "--output-table", PREDICTIONS,
         "--model-name", "titanic-survival"],
        "Unknown environment 'qa'",
    ),
    "malformed-table": (
        [*PREDICT, "--input-table", "mlsys-local.titanic.x;drop", "--model-name", "m"],
        "Invalid table name",
    ),
    "missing-table": (
        [*PREDICT, "--input-table", "mlsys-local.titanic.nope", "--model-name", "titanic-survival"],
        "mlsys-local.titanic.nope does not exist",
    ),
    "unknown-model": (
        [*PREDICT, "--input-table", PASSENGERS, "--model-name", "no-such-model"],
        "'no-such-model' is not registered",
    ),
    "unknown-version": (
        [*PREDICT, "--input-table", PASSENGERS, "--model-name", "titanic-survival",
         "--model-version", "v7"],
        "has no version v7",
    ),
    "missing-feature": (
        [*PREDICT, "--input-table", "mlsys-local.titanic.no_fare", "--model-name",
         "titanic-survival"],
        "lacks column(s) ['Fare']",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def runs(home) -> dict[str, subprocess.CompletedProcess]:
    """Every independent invocation, started at once: they share the DuckDB file as users'
    processes do, and the suite waits for the slowest rather than for their sum."""
    commands = {
        "query": ["query", QUERY],
        "dashes": DASHES,
        "seed-spelling": SEED_SPELLING,
        "sync": ["registry", "sync", "--env", "dev"],
        **{case: args for case, (args, _) in BAD_INPUTS.items()},
    }
    procs = {name: start(home, *args) for name, args in commands.items()}
    return {name: finish(proc) for name, proc in procs.items()}


def succeeded(runs, name: str) -> subprocess.CompletedProcess:
    result = runs[name]
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_query_reads_the_demo_output(home, runs):
    lines = succeeded(runs, "query").stdout.strip().splitlines()
    assert lines[0].split() == ["Survived", "n"]
    assert [line.split()[0] for line in lines[1:]] == ["0", "1"]
    # The demo truncates its output, so two runs leave one run's rows.
    assert sum(int(line.split()[1]) for line in lines[1:]) == ROWS
    assert count(home, PREDICTIONS) == ROWS


@pytest.mark.parametrize(
    ("run", "output"),
    [("dashes", "mlsys-local.titanic.cli_dash"), ("seed-spelling", "mlsys-local.titanic.cli_seed")],
)
def test_predict_with_both_spellings(home, runs, run, output):
    report = json.loads(succeeded(runs, run).stdout)
    assert report["rows_written"] == ROWS
    assert report["model"] == "titanic-survival/v1"
    assert report["output_table"] == output
    assert report["job_id"].startswith("cli-")
    assert count(home, output, f"JobId = '{report['job_id']}'") == ROWS


def test_registry_sync_list_and_alias(home, runs):
    synced = json.loads(succeeded(runs, "sync").stdout)
    assert synced["scanned"] == 1
    assert (synced["inserted"], synced["updated"]) == (0, 0)  # nothing changed since the demo
    aliased = mlsys(home, "registry", "alias", "--env", "dev", "titanic-survival", "champion", "v1")
    assert aliased.stdout.strip() == "titanic-survival@champion -> v1"
    listed = mlsys(home, "registry", "list", "--env", "dev").stdout.strip().splitlines()
    assert len(listed) == 1
    fields = listed[0].split()
    assert fields[:3] == ["titanic-survival", "v1", "active"]
    assert fields[-1] == "@champion"


def test_registry_alias_moves_to_a_new_version(home, runs, tmp_path):
    mine = tmp_path / "mlsys-home"  # a copy: the other tests keep one version
    shutil.copytree(home, mine)
    models = mine / "models" / "mlsys-models-dev" / "titanic-survival"
    shutil.copytree(models / "v1", models / "v2")  # a user uploads v2
    assert json.loads(mlsys(mine, "registry", "sync", "--env", "dev").stdout)["inserted"] == 1

    def aliases() -> dict[str, str]:
        lines = mlsys(mine, "registry", "list", "--env", "dev").stdout.strip().splitlines()
        return {line.split()[1]: " ".join(line.split()[4:]) for line in lines}

    to_v1 = mlsys(mine, "registry", "alias", "--env", "dev", "titanic-survival", "champion", "v1")
    assert to_v1.stdout.strip() == "titanic-survival@champion -> v1"
    assert aliases() == {"v1": "@champion", "v2": ""}
    to_v2 = mlsys(mine, "registry", "alias", "--env", "dev", "titanic-survival", "champion", "v2")
    assert to_v2.stdout.strip() == "titanic-survival@champion -> v2"
    assert aliases() == {"v1": "", "v2": "@champion"}  # moved, not copied
    predicted = mlsys(mine, *DASHES[:-2], "--model-version", "champion")
    assert json.loads(predicted.stdout)["model"] == "titanic-survival/v2"


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_error_line(runs, case):
    result = runs[case]
    expected = BAD_INPUTS[case][1]
    assert result.returncode == 2  # the README: one line, exit 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert result.stdout == ""


USAGE_ERRORS = {
    "unknown-option": (["predict", "--bogus"], "No such option '--bogus'", "mlsys predict"),
    "top-level-option": (["--nope"], "No such option '--nope'", "mlsys"),
    "unknown-command": (["nosuch"], "No such command 'nosuch'", "mlsys"),
    "missing-argument": (
        ["registry", "alias", "--env", "dev", "titanic-survival"],
        "Missing argument 'ALIAS'",
        "mlsys registry alias",
    ),
    "bad-integer": (
        [*DASHES, "--shards", "many"],
        "Invalid value for '--shards': 'many' is not a valid integer",
        "mlsys predict",
    ),
    "bad-choice": (
        [*DASHES, "--write-disposition", "WRITE_SOMETIMES"],
        "Invalid value for '--write-disposition' / '--write_disposition': 'WRITE_SOMETIMES'",
        "mlsys predict",
    ),
    "missing-option": (
        ["submit", "predict", "--env", "dev"],
        "Missing option '--input-table'",
        "mlsys submit predict",
    ),
}


def test_usage_errors_are_one_line_and_exit_2(tmp_path):
    procs = {case: start(tmp_path / "home", *args) for case, (args, _, _) in USAGE_ERRORS.items()}
    for case, proc in procs.items():
        result = finish(proc)
        _, message, command = USAGE_ERRORS[case]
        assert result.returncode == 2, (case, result.stderr)
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: {message}"), (case, line)
        assert line.endswith(f"(see {command} --help)"), (case, line)
        assert result.stdout == ""


def test_bad_input_wrote_nothing(home, runs):
    assert count(home, "mlsys-local.titanic.no_fare") == ROWS
    assert not warehouse(home).exists(TableId.parse("mlsys-local.titanic.err_out"))
    staging = home / "staging"
    assert not staging.exists() or not any(staging.iterdir())
