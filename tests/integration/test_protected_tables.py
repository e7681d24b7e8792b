"""mlsys' own datasets are never a job's input or output, through any route (issue #11 §1).

Attack: with one valid token, POST /predict with output_table = the registry and
WRITE_TRUNCATE replaced the registry, and a forged registry row then made a worker unpickle an
unregistered file. Every route that starts a job now refuses it before anything is queued,
and the worker refuses a job record that names such a table anyway.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mlsys.cli import main
from mlsys.jobs import JobKind, NewJob
from mlsys.predict import PredictSpec, prepare_predict
from mlsys.settings import get_settings
from tests.integration.jobs_support import INPUT, OUTPUT, make_stack
from tests.integration.trust_support import (
    PASSENGERS,
    PROJECT,
    REGISTRY,
    assert_problem,
    serve_api,
)
from tests.services import celery_worker
from worker.dispatch import send_unit

pytestmark = pytest.mark.integration

TOKEN = "protected-tables-token-0123"


@pytest.fixture
def api(tmp_path, demo_home, redis_url, redis_client):
    with serve_api(tmp_path / "home", demo_home, redis_url, TOKEN, MLSYS_API_TOKENS=TOKEN) as api:
        yield api


def _body(**overrides) -> dict:
    return {
        "env": "dev",
        "input_table": PASSENGERS,
        "output_table": f"{PROJECT}.titanic.scored",
        "model_name": "titanic-survival",
        "model_version": "v1",
        "id_columns": ["PassengerId"],
        **overrides,
    }


OWN_TABLES = [
    REGISTRY,
    f"{PROJECT}.mlsys_prod.model_registry",  # another environment's registry
    f"{PROJECT}.MLSYS_DEV.model_registry",  # DuckDB folds case: the same schema
    f"{PROJECT}.mlsys_dev.anything_mlsys_creates",
]


@pytest.mark.parametrize("table", OWN_TABLES)
def test_registry_overwrite_is_refused_and_nothing_is_enqueued(api, table):
    before = api.registry_rows()

    post = api.call(
        "POST", "/predict", json=_body(output_table=table, write_disposition="WRITE_TRUNCATE")
    )
    alias = api.call("GET", "/predict", params=_body(output_table=table, id_columns="PassengerId"))

    for response in (post, alias):
        assert_problem(response, 403, "mlsys keeps its own tables", "another dataset")
    assert api.queued() == [] and api.job_records() == []
    assert api.registry_rows() == before


def test_own_tables_are_refused_as_input(api):
    response = api.call("POST", "/predict", json=_body(input_table=REGISTRY))

    assert_problem(response, 403, "input_table")
    assert api.queued() == [] and api.job_records() == []


def test_output_equal_to_input_is_refused(api):
    response = api.call(
        "POST", "/predict", json=_body(output_table=PASSENGERS, write_disposition="WRITE_TRUNCATE")
    )

    assert_problem(response, 400, "is the input_table")
    assert api.queued() == [] and api.job_records() == []


def test_cli_predict_refuses_the_registry_in_one_line(tmp_path, demo_home, monkeypatch):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    monkeypatch.setenv("MLSYS_HOME", str(home))
    get_settings.cache_clear()
    try:
        args = ["predict", "--env=dev", f"--input-table={PASSENGERS}", "--model-name=scored"]
        result = CliRunner().invoke(main, [*args, f"--output-table={REGISTRY}"])
        same = CliRunner().invoke(main, [*args, f"--output-table={PASSENGERS}"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 2 and result.output.startswith("error: "), result.output
    assert "mlsys keeps its own tables" in result.output
    assert same.exit_code == 2 and "is the input_table" in same.output, same.output


def test_worker_refuses_a_job_record_that_names_the_registry(tmp_path, redis_url, redis_client):
    """Redis is infrastructure, but a job record edited there must not reach the registry."""
    stack = make_stack(tmp_path, redis_url)
    stack.load_table(200)
    stack.register()
    spec = PredictSpec.parse(
        settings=stack.settings,
        env="dev",
        input_table=str(INPUT),
        output_table=str(OUTPUT),
        model_name="scripted",
        write_disposition="WRITE_TRUNCATE",
    )
    prepared = prepare_predict(spec, stack.warehouse, stack.settings).to_json()
    forged = {**prepared, "spec": {**prepared["spec"], "output_table": REGISTRY}}
    new = NewJob(JobKind.PREDICT, forged["spec"], "local", rows_total=200, prepared=forged)
    job, _ = stack.jobs.create(new)
    registry = stack.warehouse.read_table(_registry(stack)).to_pylist()

    with celery_worker(stack.env, stack.cwd):
        send_unit(job.job_id, "plan", app=stack.celery)
        done = stack.wait(job.job_id)

    assert done.state == "failed", done
    assert "mlsys keeps its own tables" in done.error.message
    assert stack.warehouse.read_table(_registry(stack)).to_pylist() == registry
    assert stack.staging(job.job_id) == []


def _registry(stack):
    from mlsys.registry import registry_table

    return registry_table(stack.settings, "dev")
