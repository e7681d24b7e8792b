"""Set-up shared by the worker integration tests: data, a registered model, a job stack."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import redis

from mlsys import datasets
from mlsys.artifacts import save_model
from mlsys.ids import TableId
from mlsys.jobs import Job, JobKind, JobStore, NewJob, keys
from mlsys.predict import PredictSpec, prepare_predict
from mlsys.registry import sync_registry
from mlsys.settings import Settings
from mlsys.store import open_store
from mlsys.warehouse import open_warehouse
from tests.models import ScriptedClassifier
from tests.services import isolated_env, repo_root
from worker.app import create_celery
from worker.dispatch import sender

PROJECT = "mlsys-local"
INPUT = TableId(PROJECT, "titanic", "passengers")
OUTPUT = TableId(PROJECT, "titanic", "predictions")


@dataclass
class Stack:
    """Settings, backends, job store and a Celery app for one test, and the env for workers."""

    settings: Settings
    env: dict[str, str]
    home: Path

    def __post_init__(self) -> None:
        self.warehouse = open_warehouse(settings=self.settings)
        self.store = open_store(settings=self.settings)
        self.jobs = JobStore.from_settings(self.settings)
        self.celery = create_celery(self.settings)
        self.cwd = repo_root()
        # The Celery broker's own keys (queues, unacked messages), not the job engine's.
        self.broker = redis.Redis.from_url(self.settings.redis_url, decode_responses=True)

    def load_table(self, rows: int, special: dict[int, str] | None = None) -> None:
        """The passengers table; `special` sets Sex of some PassengerIds (poison, crash)."""
        frame = datasets.titanic(rows)
        for passenger, value in (special or {}).items():
            frame.loc[frame[datasets.ID_COLUMN] == passenger, "Sex"] = value
        self.warehouse.write(frame, INPUT, "WRITE_TRUNCATE")

    def register(self, model=None, name: str = "scripted", version: int | None = None) -> None:
        model = model or ScriptedClassifier().fit(pd.DataFrame(columns=["Sex", "Pclass"]))
        save_model(
            model,
            self.store,
            self.settings.bucket_for("dev"),
            name,
            version,
            target="Survived",
            id_columns=[datasets.ID_COLUMN],
        )
        sync_registry(self.warehouse, self.store, self.settings, "dev")

    def submit(
        self,
        model: str = "scripted",
        shards: int | None = None,
        output: TableId = OUTPUT,
        source: TableId = INPUT,
        **extra,
    ) -> str:
        """What POST /predict does: validate, record, enqueue the first unit."""
        job, _ = self.jobs.submit(self.new_job(model, shards, output, source, **extra), self.send)
        return job.job_id

    def new_job(
        self,
        model: str = "scripted",
        shards: int | None = None,
        output: TableId = OUTPUT,
        source: TableId = INPUT,
        **extra,
    ) -> NewJob:
        """A validated predict job, pinned to its model, as POST /predict records it."""
        spec = PredictSpec.parse(
            settings=self.settings,
            env="dev",
            input_table=str(source),
            output_table=str(output),
            model_name=model,
            shards=shards,
            **extra,
        )
        prepared = prepare_predict(spec, self.warehouse, self.settings)
        return NewJob(
            JobKind.PREDICT,
            spec.to_json(),
            "local",
            rows_total=prepared.rows_total,
            prepared=prepared.to_json(),
        )

    def send(self, job_id: str, unit: str, attempt: int) -> None:
        sender(self.celery)(job_id, unit, attempt)

    def wait(self, job_id: str, timeout: float = 90) -> Job:
        """The job once it ended (the job engine's blocking wait, no polling)."""
        job = self.jobs.wait(job_id, timeout)
        if job is None or not job.state.terminal:
            raise TimeoutError(f"timed out after {timeout}s waiting for job {job_id} to finish")
        return job

    def output_rows(self, output: TableId = OUTPUT) -> pd.DataFrame:
        if not self.warehouse.exists(output):
            return pd.DataFrame(columns=["PassengerId", "JobId"])
        return self.warehouse.read_table(output).to_pandas()

    def warehouse_table(self, name: str) -> TableId:
        return OUTPUT.with_table(name)

    def staging(self, job_id: str) -> list[Path]:
        """What is left in the job's staging folder. A worker's cleanup may be deleting it
        while this looks (a folder vanishes mid-walk): look again, until a look sees it whole."""
        folder = self.settings.staging_dir / job_id
        while True:
            try:
                return sorted(folder.rglob("*")) if folder.exists() else []
            except FileNotFoundError:
                continue

    def settled(self, job_id: str) -> bool:
        """No unit of the job holds a lease any more."""
        return not any(self.jobs.lease_alive(job_id, unit) for unit in self.jobs.units(job_id))


def make_stack(tmp_path: Path, redis_url: str, **overrides: str) -> Stack:
    values = {
        "MLSYS_HOME": str(tmp_path / "home"),
        "REDIS_URL": redis_url,
        "MLSYS_RECOVERY_TIMEOUT": "2",
        "MLSYS_BATCH_ROWS": "1000",
        "MLSYS_MAX_ATTEMPTS": "3",
        "MLSYS_REGISTRY_SYNC_INTERVAL": "0",
        **overrides,
    }
    env = isolated_env()
    env.update(values)
    settings = Settings(_env_file=None, **values)
    return Stack(settings=settings, env=env, home=tmp_path)


def rewind_to_committing(stack: Stack, job_id: str) -> None:
    """Make a succeeded job look as if its commit transaction ran and its worker then died
    before recording it: running, committing, the commit unit held by a gone worker whose
    lease expired, no committed mark.
    (Reaches under the job engine on purpose: no API should be able to do this.)"""
    r, job = stack.jobs._redis, keys.job(job_id)
    r.hset(job, mapping={"state": "running", "phase": "committing"})
    r.hdel(job, "finished_at", "result", "rows_written")
    r.delete(keys.done(job_id))
    r.sadd(keys.active(), job_id)
    r.hset(keys.units(job_id), "commit", '{"state": "running", "attempt": 1, "worker": "gone:1"}')


def unit_worker(stack: Stack, job_id: str, unit: str) -> str | None:
    """Name of the worker running `unit` of a job (MLSYS_WORKER_NAME:pid)."""
    state = stack.jobs.units(job_id).get(unit) or {}
    return state.get("worker") if state.get("state") == "running" else None


def pause(seconds: float) -> None:
    time.sleep(seconds)
