"""The registry is not trusted blindly, and nothing names an artifact it does not hold (#11 §3).

Attack: rows that look like registry rows (a blob outside any `vN/` folder with its SHA-256, no
generation, alias `champion`) made the next predict of `champion` unpickle that blob on a
worker. Here the blob is a pickle that writes a file when loaded: the file must never appear.
"""

from __future__ import annotations

import json
import logging
import pickle
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from mlsys.artifacts import sha256_hex
from mlsys.jobs import JobKind, NewJob
from mlsys.predict import PredictSpec, prepare_predict
from mlsys.registry import KEYS, SCHEMA, registry_table
from tests.integration.jobs_support import INPUT, OUTPUT, make_stack
from tests.integration.trust_support import (
    PASSENGERS,
    PROJECT,
    assert_problem,
    serve_api,
)
from tests.services import celery_worker
from worker.dispatch import send_unit

pytestmark = pytest.mark.integration

TOKEN = "registry-trust-token-0123"
FEATURES = ["Pclass", "SibSp", "Fare"]


class _Payload:
    """Unpickling this runs code: it writes `marker`."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def hostile_pickle(marker) -> bytes:
    return pickle.dumps(_Payload(str(marker)))


def forged_row(name: str, version: int, bucket: str, path: str, data: bytes, **extra) -> dict:
    now = datetime.now(UTC)
    return {
        "model_name": name,
        "model_version": version,
        "environment": "dev",
        "gcs_bucket": bucket,
        "blob_path": path,
        "file_size_bytes": len(data),
        "upload_timestamp": now,
        "uploader": "mallory",
        "registered_at": now,
        "metadata": json.dumps(
            {
                "features": ["Pclass"],
                "target": "Survived",
                "task": "classification",
                "id_columns": ["PassengerId"],
            }
        ),
        "sha256": sha256_hex(data),
        "md5_hash": None,
        "crc32c": None,
        "generation": None,
        "status": "active",
        "aliases": "[]",
        "updated_at": now,
        **extra,
    }


def plant(warehouse, store, settings, marker) -> dict[str, dict]:
    """Hostile bytes in the buckets and registry rows pointing at them, each a different way."""
    data = hostile_pickle(marker)
    dev, prod = settings.bucket_for("dev"), settings.bucket_for("prod")
    store.write(dev, "titanic-survival/evil.pkl", data)  # outside any vN/ folder
    store.write(prod, "titanic-survival/v9/model.pkl", data)  # another environment's bucket
    store.write(dev, "other-model/v1/model.pkl", data)  # another model's version
    rows = {
        "champion": forged_row(
            "titanic-survival", 7, dev, "titanic-survival/evil.pkl", data, aliases='["champion"]'
        ),
        "challenger": forged_row(
            "titanic-survival",
            9,
            prod,
            "titanic-survival/v9/model.pkl",
            data,
            aliases='["challenger"]',
        ),
        "v8": forged_row("titanic-survival", 8, dev, "other-model/v1/model.pkl", data),
    }
    table = pa.Table.from_pylist(list(rows.values()), schema=SCHEMA)
    warehouse.merge(registry_table(settings, "dev"), table, KEYS)
    return rows


@pytest.fixture
def api(tmp_path, demo_home, redis_url, redis_client):
    with serve_api(tmp_path / "home", demo_home, redis_url, TOKEN, MLSYS_API_TOKENS=TOKEN) as api:
        yield api


def test_forged_registry_rows_are_never_loaded(api, tmp_path, caplog):
    from mlsys.store import open_store
    from mlsys.warehouse import open_warehouse

    marker = tmp_path / "pwned"
    plant(
        open_warehouse(settings=api.settings),
        open_store(settings=api.settings),
        api.settings,
        marker,
    )
    caplog.set_level(logging.WARNING, logger="mlsys.registry")

    for version in ("champion", "challenger", "v7", "v8", "v9"):
        body = {
            "env": "dev",
            "input_table": PASSENGERS,
            "output_table": f"{PROJECT}.titanic.scored",
            "model_name": "titanic-survival",
            "model_version": version,
        }
        assert_problem(api.call("POST", "/predict", json=body), 404, "registered versions: v1")
    listed = api.call("GET", "/models", params={"env": "dev"}).json()["models"]

    assert [m["model_version"] for m in listed] == ["v1"]
    assert api.queued() == [] and api.job_records() == []
    assert not marker.exists()
    assert "titanic-survival/evil.pkl" in caplog.text and "mlsys-models-prod" in caplog.text


def test_worker_loads_only_the_artifact_the_registry_holds(tmp_path, redis_url, redis_client):
    """A job record edited in Redis to name a hostile blob (with its true SHA-256)."""
    stack = make_stack(tmp_path, redis_url)
    stack.load_table(200)
    stack.register()
    marker = tmp_path / "pwned"
    data = hostile_pickle(marker)
    bucket = stack.settings.bucket_for("dev")
    stack.store.write(bucket, "scripted/v1/extra.pkl", data)
    spec = PredictSpec.parse(
        settings=stack.settings,
        env="dev",
        input_table=str(INPUT),
        output_table=str(OUTPUT),
        model_name="scripted",
    )
    prepared = prepare_predict(spec, stack.warehouse, stack.settings).to_json()
    forged = {
        **prepared,
        "model": {
            **prepared["model"],
            "blob_path": "scripted/v1/extra.pkl",
            "sha256": sha256_hex(data),
            "generation": None,
        },
    }
    new = NewJob(JobKind.PREDICT, spec.to_json(), "local", rows_total=200, prepared=forged)
    job, _ = stack.jobs.create(new)

    with celery_worker(stack.env, stack.cwd):
        send_unit(job.job_id, "plan", app=stack.celery)
        done = stack.wait(job.job_id)

    assert done.state == "failed", done
    assert "not the artifact the registry holds" in done.error.message
    assert not marker.exists()
    assert stack.output_rows().empty


def test_sync_over_hostile_pickles_unpickles_nothing_and_registers_the_good(tmp_path):
    """#11 §4: a sync runs on whatever anyone dropped in the bucket; it must never load it."""
    from mlsys import datasets
    from mlsys.artifacts import save_model
    from mlsys.registry import read_registry, sync_registry
    from mlsys.settings import Settings
    from mlsys.store import open_store
    from mlsys.warehouse import open_warehouse
    from tests.models import ScriptedClassifier

    settings = Settings(_env_file=None, MLSYS_HOME=str(tmp_path / "home"))
    warehouse, store = open_warehouse(settings=settings), open_store(settings=settings)
    bucket = settings.bucket_for("dev")
    marker = tmp_path / "pwned"
    model = ScriptedClassifier().fit(datasets.titanic(10)[["Sex", "Pclass"]])
    save_model(model, store, bucket, "good", 1, target="Survived", id_columns=["PassengerId"])
    store.write(bucket, "good/v2/model.pkl", hostile_pickle(marker))  # bare, hostile
    store.write(bucket, "good/v3/model.pkl", b"not a pickle at all")  # bare, broken
    save_model(model, store, bucket, "good", 4, target="Survived", id_columns=["PassengerId"])
    store.write(bucket, "good/v4/metadata.json", b"{not json")
    store.write(bucket, "other/v1/model.pkl", hostile_pickle(marker))

    result = sync_registry(warehouse, store, settings, "dev")
    again = sync_registry(warehouse, store, settings, "dev")

    assert not marker.exists()
    status = {
        (e.model_name, e.version): e.status for e in read_registry(warehouse, settings, "dev")
    }
    assert status == {
        ("good", "v1"): "active",
        ("good", "v2"): "pending",
        ("good", "v3"): "pending",
        ("good", "v4"): "invalid",
        ("other", "v1"): "pending",
    }
    assert (result.scanned, result.inserted, result.invalid) == (5, 5, 1)
    assert (again.inserted, again.updated) == (0, 0)


def test_a_pending_version_gets_its_features_in_the_worker_at_first_predict(
    tmp_path, redis_url, redis_client
):
    """Bare pickles: the API never loads them; the worker does, after the hash check, and
    records what it read (or why the version is unusable) in the registry."""
    from sklearn.tree import DecisionTreeClassifier

    from mlsys.artifacts import serialize
    from mlsys.registry import read_registry, sync_registry
    from tests.services import serve_wsgi
    from web import create_app

    stack = make_stack(tmp_path, redis_url)
    stack.load_table(300)
    bucket = stack.settings.bucket_for("dev")
    frame = stack.warehouse.read_table(INPUT).to_pandas()
    model = DecisionTreeClassifier(max_depth=3).fit(frame[FEATURES], frame["Survived"])
    stack.store.write(bucket, "bare/v1/model.pkl", serialize(model, "pickle"))
    stack.store.write(bucket, "bare/v2/model.pkl", b"not a pickle at all")
    sync_registry(stack.warehouse, stack.store, stack.settings, "dev")
    app = create_app({"SETTINGS": stack.settings, "CELERY_APP": stack.celery})

    def body(version: str) -> dict:
        return {
            "env": "dev",
            "input_table": str(INPUT),
            "output_table": str(OUTPUT),
            "model_name": "bare",
            "model_version": version,
            "id_columns": ["PassengerId"],
        }

    with serve_wsgi(app) as url, celery_worker(stack.env, stack.cwd):
        import requests

        first = requests.post(f"{url}/predict", json=body("v1"), timeout=30)
        assert first.status_code == 202, first.text
        done = stack.wait(first.json()["job_id"])
        assert done.state == "succeeded", done.error
        broken = requests.post(f"{url}/predict", json=body("v2"), timeout=30)
        failed = stack.wait(broken.json()["job_id"])
        again = requests.post(f"{url}/predict", json=body("v2"), timeout=30)

    assert len(stack.output_rows()) == 300
    entries = {e.version: e for e in read_registry(stack.warehouse, stack.settings, "dev")}
    assert entries["v1"].status == "active"
    assert entries["v1"].features == FEATURES
    assert entries["v1"].metadata["inferred_from"] == "model"
    assert failed.state == "failed" and "does not load" in failed.error.message
    assert entries["v2"].status == "invalid"
    assert_problem(again, 409, "does not load")
    # A later sync of unchanged bytes keeps what the worker learned.
    sync_registry(stack.warehouse, stack.store, stack.settings, "dev")
    after = {e.version: e for e in read_registry(stack.warehouse, stack.settings, "dev")}
    assert after == entries
