"""The import paths users and notebooks rely on keep working after modules moved into packages:
an old path gives the very module now at its new one."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from mlsys._moved import MOVED

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_path_is_the_module_at_its_new_one(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_from_package_import_module_follows_the_move_too():
    from mlsys import labels
    from mlsys.warehouse import bq_retry

    assert labels.__name__ == "mlsys.models.labels"
    assert bq_retry.__name__ == "mlsys.warehouse.bigquery.retry"


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("mlsys.bq", ["bq_get", "bq_put"]),
        ("mlsys.gcs", ["gcs_get", "gcs_put", "gcs_get_pickle", "gcs_put_pickle"]),
        ("mlsys.settings", ["Settings", "get_settings"]),
        ("mlsys.vis", ["feature_importance", "plot_drift"]),
        ("mlsys.datasets", ["TARGET"]),
        ("mlsys.client", ["MlsysClient", "ApiError"]),
        ("mlsys.artifacts", ["save_model", "load_verified"]),
        ("mlsys.predict", ["predict_table", "PredictSpec", "PreparedPredict", "run_shard"]),
        ("mlsys.registry", ["sync_registry", "read_registry", "resolve", "set_alias", "ACTIVE"]),
        ("mlsys.monitoring", ["compare", "Profile", "training_profile", "PREDICTION"]),
        ("mlsys.cli", ["main"]),
    ],
)
def test_the_public_names_are_where_users_import_them(module, names):
    imported = importlib.import_module(module)
    missing = [name for name in names if not hasattr(imported, name)]
    assert missing == []


def test_every_package_says_what_it_exports():
    for package in ("predict", "registry", "models", "monitoring", "cli"):
        imported = importlib.import_module(f"mlsys.{package}")
        assert imported.__doc__ and imported.__all__
        assert all(hasattr(imported, name) for name in imported.__all__)


def test_the_mlsys_command_is_the_cli_main():
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "mlsys"]
    assert script.value == "mlsys.cli:main"
    assert script.load() is importlib.import_module("mlsys.cli").main


def test_an_old_path_works_in_a_fresh_interpreter():
    code = "import mlsys.prediction_stats as s, mlsys.monitoring.stats as n; print(s is n)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
