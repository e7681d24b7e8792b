"""Hostile names through the CLI and the seed helpers: refused with one clear line, nothing
written anywhere (the API's share of the table is in test_api.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from mlsys import bq, gcs
from mlsys.cli import main
from mlsys.errors import InvalidIdentifier
from mlsys.settings import get_settings

pytestmark = pytest.mark.integration

HOSTILE_TABLES = [
    "mlsys-local.titanic.passengers; DROP TABLE x",
    "mlsys-local.titanic.passengers`--",
    "mlsys-local.titanic.pass'engers",
    'mlsys-local.titanic."passengers"',
    "mlsys-local.titanic.passengers -- comment",
    "mlsys-local..passengers",
    "../../etc.passwd.x",
    "mlsys-local.tіtanic.passengers",  # Cyrillic i
    "mlsys-local.titanic." + "t" * 1100,
    "mlsys-local.titanic.passengers/*x*/",
]
HOSTILE_MODELS = [
    "../titanic",
    "titanic/../../x",
    "/etc/passwd",
    "file:///etc/passwd",
    "gs://other-bucket/x",
    "Titanic",
    "a" * 200,
    "titanic survival",
]
HOSTILE_PATHS = ["../outside.pkl", "/etc/passwd", "a/../../b.pkl", "a//b", "a/./b", "~/.ssh/x"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("MLSYS_HOME", str(home))
    for name in ("MLSYS_WAREHOUSE", "MLSYS_MODEL_STORE", "GCP_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _predict_args(**override) -> list[str]:
    values = {
        "env": "dev",
        "input-table": "mlsys-local.titanic.passengers",
        "output-table": "mlsys-local.titanic.out",
        "model-name": "titanic-survival",
        "model-version": "v1",
        **override,
    }
    return ["predict", *[f"--{k}={v}" for k, v in values.items()]]


@pytest.mark.parametrize("table", HOSTILE_TABLES)
def test_cli_refuses_hostile_tables_in_one_line(home, table):
    for option in ("input-table", "output-table"):
        result = CliRunner().invoke(main, _predict_args(**{option: table}))
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output
        assert "Traceback" not in result.output
    assert _files(home) == set()  # nothing was created, not even the warehouse file


@pytest.mark.parametrize("name", HOSTILE_MODELS)
def test_cli_refuses_hostile_model_names(home, name):
    result = CliRunner().invoke(main, _predict_args(**{"model-name": name}))
    assert result.exit_code == 2 and result.output.startswith("error: "), result.output
    alias = CliRunner().invoke(main, ["registry", "alias", "--env", "dev", name, "x", "v1"])
    assert alias.exit_code == 2 and alias.output.startswith("error: "), alias.output
    assert _files(home) == set()


def test_cli_refuses_hostile_versions_envs_and_columns(home):
    for override in (
        {"model-version": "v1; DROP"},
        {"model-version": "../v1"},
        {"env": "dev;rm"},
        {"id-columns": 'PassengerId,"x"'},
        {"write-disposition": "WRITE_ALL"},
    ):
        result = CliRunner().invoke(main, _predict_args(**override))
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output


def test_cli_error_is_one_line_in_a_real_process(home):
    mlsys = Path(sys.executable).parent / "mlsys"
    done = subprocess.run(
        [str(mlsys), *_predict_args(**{"input-table": HOSTILE_TABLES[0]})],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")


@pytest.mark.parametrize("table", HOSTILE_TABLES)
def test_bq_put_refuses_hostile_tables_and_writes_nothing(home, table):
    with pytest.raises(InvalidIdentifier):
        bq.bq_put(pd.DataFrame({"a": [1]}), table)
    assert _files(home) == set()


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_gcs_helpers_refuse_paths_out_of_the_bucket(home, tmp_path, path):
    for call in (
        lambda: gcs.gcs_put(b"x", "mlsys-models-dev", path),
        lambda: gcs.gcs_put_pickle({"a": 1}, "mlsys-models-dev", path),
        lambda: gcs.gcs_get("mlsys-models-dev", path),
        lambda: gcs.gcs_get_pickle("mlsys-models-dev", path),
    ):
        with pytest.raises(InvalidIdentifier):
            call()
    assert _files(tmp_path) == set()


@pytest.mark.parametrize("bucket", ["../models", "MLSYS", "a", "bucket/x", "..", "b" * 70])
def test_gcs_helpers_refuse_bad_bucket_names(home, tmp_path, bucket):
    with pytest.raises(InvalidIdentifier):
        gcs.gcs_put(b"x", bucket, "m/v1/model.pkl")
    with pytest.raises(InvalidIdentifier):
        gcs.gcs_list_blobs(bucket)
    assert _files(tmp_path) == set()
