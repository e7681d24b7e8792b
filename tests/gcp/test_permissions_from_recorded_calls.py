"""The permissions each process needs, derived from the calls its code makes, are what Terraform
grants its service account, and every grant is used or says why it is there.

The whole stack runs on the emulators with every Google client recording its calls
(`mlsys.google_clients`, MLSYS_GOOGLE_CALL_LOG): the API serves every route of its URL map
(API and /ui) to an admin, a real Celery worker runs the jobs those routes submit (predict,
registry sync, alias moves, ...), beat runs for a while, and Flower serves its pages. Each
recorded call maps to IAM permissions on a resource (infra/permissions.toml [methods]);
infra/modules/mlsys/iam.tf, parsed, says which roles each account holds where; [roles] says
what a role allows. A new route or task that makes a new call fails here until Terraform
grants it; a binding broader than what the calls need from it, or one no call uses (without a
reason), fails too.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest
import requests

from mlsys.cli.demo import run_demo
from mlsys.ids import TableId
from mlsys.jobs import JobStore
from mlsys.settings import Settings
from mlsys.store.gcs import GCSModelStore
from mlsys.tables import EVALUATIONS, PREDICTION_STATS
from mlsys.warehouse.bigquery import BigQueryWarehouse
from tests.infra import INFRA
from tests.integration.test_route_matrix import FORMS, JSON_BODIES, QUERIES, _path, _static
from tests.services import (
    celery,
    celery_worker,
    free_port,
    isolated_env,
    process,
    repo_root,
    serve_wsgi,
    wait_for,
)
from tests.unit.test_permissions import _granted
from web import create_app
from web.ui.guard import SESSION_COOKIE
from web.ui.sessions import SessionStore
from worker.app import create_celery

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

MATRIX = tomllib.loads((INFRA / "permissions.toml").read_text())
ADMIN = "permissions-admin-token-0123"
ENV = "dev"
#: The datasets Terraform is told about (config.auto.tfvars): what the demo reads and writes.
INPUT_DATASETS = {"titanic"}
OUTPUT_DATASETS = {"scores_a"}


def _on_emulator(value):
    """A route matrix body, naming the emulator's project instead of the embedded one's."""
    return json.loads(json.dumps(value).replace("mlsys-local", "mlsys-test"))


@pytest.fixture
def stack(
    bigquery_emulator, gcs_emulator, gcs_store, redis_url, redis_client, tmp_path, monkeypatch
):
    """The emulators seeded with the demo (not recorded), then the recording switched on."""
    env = {
        **bigquery_emulator.env,
        "STORAGE_EMULATOR_HOST": gcs_emulator,
        "GCP_PROJECT_ID": bigquery_emulator.project,
        "MLSYS_WAREHOUSE": f"bigquery://{bigquery_emulator.project}",
        "MLSYS_MODEL_STORE": "gs://",
        "MLSYS_HOME": str(tmp_path / "home"),
        "REDIS_URL": redis_url,
        "MLSYS_API_TOKENS": ADMIN,
        "MLSYS_SUBMIT_RATE_LIMIT": "100000/minute",
        "MLSYS_ALIAS_WAIT_SECONDS": "0",
        "MLSYS_SYNC_WAIT_SECONDS": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    warehouse = BigQueryWarehouse(bigquery_emulator.project, settings, retry_timeout=20)
    store = GCSModelStore.from_url("gs://", settings)
    run_demo(warehouse, store, settings, rows=300, say=lambda *_: None)
    # As on Google Cloud, the output datasets exist (the data team's, listed in
    # output_datasets): mlsys may not create datasets there.
    for dataset in OUTPUT_DATASETS:
        warehouse.tables.ensure_dataset(bigquery_emulator.project, dataset)
    _as_made_before_the_principal_column(warehouse, settings)
    warehouse.close()

    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("MLSYS_GOOGLE_CALL_LOG", str(log))
    monkeypatch.setenv("MLSYS_PROCESS", "web")  # this process serves the API
    yield settings, {**env, "MLSYS_GOOGLE_CALL_LOG": str(log)}, log


def _as_made_before_the_principal_column(warehouse: BigQueryWarehouse, settings: Settings):
    """mlsys' job-derived tables as a release before their `principal` column made them: the
    jobs the routes submit add it (ALTER TABLE), so what that needs is derived here too."""
    for owned in (PREDICTION_STATS, EVALUATIONS):
        table = TableId(settings.gcp_project_id, settings.dataset_for(ENV), owned.name)
        older = [dict(f) for f in owned.fields if f["name"] != "principal"]
        warehouse.tables.drop(table)
        warehouse.tables.create(table, older, exists_ok=False)


def _web_config(settings: Settings, celery_app) -> dict:
    """The API as on Cloud Run, but for one emulator gap: bqemulator keeps no row count after
    DML, so its warehouse counts rows with a query, which the API never sends in the cloud
    (it reads numRows). Its warehouse is the production one (no query results through read
    sessions, as web.backends opens it); its clients are still built, and recorded, by
    mlsys.google_clients."""
    warehouse = BigQueryWarehouse(
        settings.gcp_project_id, settings, emulated=False, read_sessions=False
    )
    return {"SETTINGS": settings, "CELERY_APP": celery_app, "WAREHOUSE": warehouse}


def _submit_objects(url: str):
    """A job and a schedule for the routes that name one."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    job = requests.post(
        f"{url}/predict", json=_on_emulator(JSON_BODIES[("POST", "/predict")]), headers=headers
    )
    schedule = requests.post(
        f"{url}/schedules",
        json=_on_emulator(JSON_BODIES[("POST", "/schedules")]),
        headers=headers,
    )
    assert job.status_code == 202 and schedule.status_code == 201, (job.text, schedule.text)
    objects = type("Objects", (), {})()
    objects.job_id, objects.schedule_id = job.json()["job_id"], schedule.json()["schedule_id"]
    return objects


def _drive_routes(url: str, settings: Settings, objects, methods: set[str] | None = None):
    """Every route of the app (or those of `methods`), called by an admin; returns what
    answered 500."""
    app = create_app({"SETTINGS": settings})
    cookie, session = SessionStore.from_url(settings.redis_url).create(ADMIN)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    failed = []
    rules = sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if methods is None or method in methods
    )
    for method, rule in rules:
        path = _static(rule) if "<path:filename>" in rule else _path(rule, objects)
        kwargs: dict = {"allow_redirects": False, "timeout": 60}
        if rule.startswith("/ui"):
            form = {**FORMS.get((method, rule), {}), "csrf_token": session.csrf}
            kwargs["cookies"] = {SESSION_COOKIE: cookie}
            if method == "POST":
                kwargs["data"] = _on_emulator(form)
        else:
            kwargs["headers"] = headers
            if (method, rule) in JSON_BODIES:
                kwargs["json"] = _on_emulator(JSON_BODIES[(method, rule)])
            kwargs["params"] = _on_emulator(QUERIES.get((method, rule)))
        answer = requests.request(method, url + path, **kwargs)
        if answer.status_code >= 500 and answer.status_code != 503:
            failed.append(f"{method} {rule}: {answer.status_code} {answer.text[:200]}")
    return failed


def _answers(url: str) -> bool:
    try:
        return requests.get(url, auth=("ops", "secret"), timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _permissions(call: dict) -> list[tuple[str, str]]:
    """(permission, resource) pairs a recorded call needs: resource is "project", a dataset
    ("project.dataset"), or a bucket ("gs://name")."""
    methods = MATRIX["methods"]
    name = call["call"]
    assert name in methods, f"{name} is not in infra/permissions.toml [methods]"
    needs = []
    for entry in methods[name]:
        permission, _, on = entry.partition(" on ")
        for resource in _resources(call, on or "project"):
            needs.append((permission, resource))
    return needs


def _resources(call: dict, on: str) -> list[str]:
    args = [a for a in _flat([*call["args"], *call["kwargs"].values()]) if isinstance(a, str)]
    if on == "project":
        return ["project"]
    if on == "bucket":
        bucket = (call["on"] or (args[0] if args else "")).split("/")[0]
        return [f"gs://{bucket}"]
    if on in ("read", "written", "created", "altered"):
        read, written, created, altered = _tables_of(args[0])
        named = {"read": read, "written": written, "created": created, "altered": altered}
        return sorted({_dataset(t) for t in named[on]})
    datasets = [d for d in (_dataset(a) for a in args) if d]
    if on == "source":
        return datasets[:-1]
    if on == "destination":
        return datasets[-1:]
    return datasets[:1]  # table, dataset: the first one named


def _flat(values: list) -> list:
    return [v for value in values for v in (value if isinstance(value, list) else [value])]


def _dataset(value) -> str | None:
    """The dataset a table id, a dataset id or a Storage Read path names."""
    if not isinstance(value, str):
        return None
    if value.startswith("projects/"):
        parts = value.split("/")
        return f"{parts[1]}.{parts[3]}" if len(parts) >= 4 else None
    parts = value.replace(":", ".").split(".")
    return ".".join(parts[:2]) if len(parts) in (2, 3) and "/" not in value else None


def _tables_of(sql: str) -> tuple[set[str], set[str], set[str], set[str]]:
    """Tables a statement reads (a MERGE also reads its target), changes, creates, and alters
    (ALTER TABLE changes the table's schema, not its rows: tables.update)."""
    created = set(re.findall(r"CREATE (?:OR REPLACE )?TABLE (?:IF NOT EXISTS )?`([^`]+)`", sql))
    merged = set(re.findall(r"MERGE `([^`]+)`", sql))
    changed = set(re.findall(r"(?:INSERT INTO|TRUNCATE TABLE|DELETE FROM|UPDATE) `([^`]+)`", sql))
    read = set(re.findall(r"(?:FROM|JOIN|USING) `([^`]+)`", sql)) | merged
    altered = set(re.findall(r"ALTER TABLE `([^`]+)`", sql))
    return read, changed | merged | created, created, altered


def _scopes_of(resource: str, settings: Settings) -> set[str]:
    """The [scopes] of permissions.toml a resource falls in."""
    if resource == "project":
        return {"project"}
    if resource.startswith("gs://"):
        return {"models_bucket"} if resource == f"gs://{settings.bucket_for(ENV)}" else set()
    dataset = resource.split(".", 1)[1]
    if dataset == settings.dataset_for(ENV):
        return {"mlsys_dataset"}
    scopes = set()
    if dataset in OUTPUT_DATASETS:
        scopes |= {"output_datasets", "table_datasets"}
    if dataset in INPUT_DATASETS:
        scopes.add("table_datasets")
        if dataset not in OUTPUT_DATASETS:
            scopes.add("input_datasets")
    return scopes


def test_every_call_of_every_process_is_granted_to_its_account_and_every_grant_is_used(stack):
    settings, env, log = stack
    accounts = MATRIX["processes"]
    worker_env = isolated_env(**env, MLSYS_PROCESS="worker")
    beat_env = isolated_env(**env, MLSYS_PROCESS="beat")
    flower_port = free_port()
    flower_env = isolated_env(**env, MLSYS_PROCESS="flower", FLOWER_BASIC_AUTH="ops:secret")
    celery_app = create_celery(settings)
    with (
        celery_worker(worker_env, repo_root(), log=Path(env["MLSYS_HOME"]) / "worker.log"),
        process(
            celery("beat", "--loglevel=INFO"),
            beat_env,
            repo_root(),
            Path(env["MLSYS_HOME"]) / "beat.log",
        ),  # fmt: skip
        process(
            celery("flower", "--address=127.0.0.1", f"--port={flower_port}"),
            flower_env,
            repo_root(),
            Path(env["MLSYS_HOME"]) / "flower.log",
        ),  # fmt: skip
        serve_wsgi(create_app(_web_config(settings, celery_app))) as url,
    ):
        objects = _submit_objects(url)
        failed = _drive_routes(url, settings, objects)
        for page in ("/", "/workers", "/tasks", "/api/workers"):
            wait_for(
                lambda page=page: _answers(f"http://127.0.0.1:{flower_port}{page}"),
                timeout=60,
                what=f"flower {page}",
            )
        jobs = JobStore.from_settings(settings)
        deadline = time.monotonic() + 240
        while jobs.active_jobs() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not jobs.active_jobs(), "the jobs the routes submitted did not end"
        # Again, now that the jobs wrote their tables: a read of a table that does not exist
        # yet sends no SQL, so only this pass checks what the reads send (and need).
        failed += _drive_routes(url, settings, objects, {"GET"})
    celery_app.close()
    assert failed == [], "\n".join(failed)

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    by_process = defaultdict(list)
    for call in calls:
        by_process[call["process"]].append(call)
    assert {"web", "worker"} <= set(by_process), set(by_process)
    assert {c["call"] for c in by_process["worker"]} >= {
        "BigQueryReadClient.create_read_session", "Client.query", "Blob.download_as_bytes",
    }  # fmt: skip
    read_by_web = {t.rsplit(".", 1)[1] for c in by_process["web"] if c["call"] == "Client.query"
                   for t in _tables_of(c["args"][0])[0]}  # fmt: skip
    assert {"prediction_stats", "evaluations"} <= read_by_web  # monitoring, evaluation reads
    altered = {t for c in by_process["worker"] if c["call"] == "Client.query"
               for t in _tables_of(c["args"][0])[3]}  # fmt: skip
    # The predict job always adds the column; the evaluate job only when it found predictions
    # to store, which depends on whether the prediction landed first.
    assert "prediction_stats" in {t.rsplit(".", 1)[1] for t in altered}
    assert by_process["beat"] == [], "beat only sends tasks (permissions.toml [processes])"
    assert by_process["flower"] == [], "flower talks to Redis only"

    granted = _granted()  # (account, scope, role) from iam.tf
    roles = MATRIX["roles"]
    missing, used = [], set()
    served = defaultdict(set)  # binding -> the permissions recorded calls needed from it
    for name, recorded in by_process.items():
        account = accounts[name]
        for call in recorded:
            for permission, resource in _permissions(call):
                holders = {
                    (a, s, r)
                    for a, s, r in granted
                    if a == account and s in _scopes_of(resource, settings)
                    and permission in roles.get(r, ())
                }  # fmt: skip
                used |= holders
                for holder in holders:
                    served[holder].add(permission)
                if not holders:
                    what = " ".join(str(a) for a in call["args"])[:160]
                    missing.append(
                        f"{name}: {call['call']} needs {permission} on {resource} ({what})"
                    )
    assert sorted(set(missing)) == [], "not granted by infra/modules/mlsys/iam.tf"

    # No binding is broader than what the code needs from it: no smaller role would do.
    broader = [
        f"{binding}: {sorted(needed)} fit {smaller}"
        for binding, needed in served.items()
        if (smaller := [name for name, perms in roles.items()
                        if needed <= set(perms) and len(perms) < len(roles[binding[2]])])
    ]  # fmt: skip
    assert broader == [], "\n".join(broader)

    reasons = {
        (accounts[g["process"]], g["scope"], g["role"])
        for g in MATRIX["grant"]
        if g.get("unused_here")
    }
    unused = sorted(granted - used - reasons)
    assert unused == [], "granted, never used here, and no unused_here reason in permissions.toml"
