"""One settings object for the library, the API, the workers and the CLI.

Defaults live here; the environment (and a `.env` file in the working directory) overrides
them. Variable names are the ones operators already use (the seed's `GCP_PROJECT_ID`,
`GCS_BUCKET_MODELS_DEV`, ...) plus `MLSYS_*` for what is new.

Longer than most modules on purpose: every setting in one class, each with its
description, so an operator reads all of them in one place.
"""

from __future__ import annotations

import functools
import math
import os
import ssl
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mlsys.errors import UnknownEnvironment

#: The variable naming the dotenv file every Settings reads (default ./.env; empty: none).
ENV_FILE_VARIABLE = "MLSYS_ENV_FILE"


def _env(name: str, description: str, default, **kwargs):
    return Field(default, validation_alias=AliasChoices(name), description=description, **kwargs)


class Settings(BaseSettings):
    """Everything configurable. Pass overrides by their variable names: Settings(MLSYS_HOME=...)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    def __init__(self, **values) -> None:
        # MLSYS_ENV_FILE names the dotenv file to read instead of ./.env (empty: none), so a
        # notebook in a subfolder reads the repository's .env and the tests read no one's.
        if "_env_file" not in values and (path := os.environ.get(ENV_FILE_VARIABLE)) is not None:
            values["_env_file"] = path or None
        super().__init__(**values)

    # --- Google Cloud -------------------------------------------------------------------
    gcp_project_id: str = _env(
        "GCP_PROJECT_ID",
        "Project of mlsys' own tables ({project}.mlsys_{env}.model_registry) and the default "
        "BigQuery project. Any valid name works on the embedded warehouse.",
        "mlsys-local",
    )
    gcp_region: str = _env(
        "GCP_REGION",
        "Region of Cloud Run, Memorystore and the model buckets (those mlsys creates too).",
        "us-central1",
    )
    bq_location: str | None = _env(
        "MLSYS_BQ_LOCATION", "BigQuery location of jobs and staging tables (e.g. US, EU).", None
    )
    bq_dataset: str = _env(
        "BQ_DATASET", "Prefix of the per-environment dataset: {BQ_DATASET}_{env}.", "mlsys"
    )
    gcs_bucket_models_dev: str = _env(
        "GCS_BUCKET_MODELS_DEV", "Model bucket of dev.", "mlsys-models-dev"
    )
    gcs_bucket_models_staging: str = _env(
        "GCS_BUCKET_MODELS_STAGING", "Model bucket of staging.", "mlsys-models-staging"
    )
    gcs_bucket_models_prod: str = _env(
        "GCS_BUCKET_MODELS_PROD", "Model bucket of prod.", "mlsys-models-prod"
    )
    environments: Annotated[list[str], NoDecode] = _env(
        "MLSYS_ENVIRONMENTS",
        "Comma-separated environments requests may name; each has a bucket and a dataset.",
        ["dev", "staging", "prod"],
    )

    # --- Backends -----------------------------------------------------------------------
    home: Path = _env(
        "MLSYS_HOME",
        "Folder of the embedded backends (DuckDB file, model folders, staging).",
        Path(".mlsys"),
    )
    warehouse_url: str | None = _env(
        "MLSYS_WAREHOUSE",
        "Warehouse URL: bigquery://PROJECT or duckdb:///path/to/file.duckdb. "
        "Default: duckdb under MLSYS_HOME.",
        None,
    )
    model_store_url: str | None = _env(
        "MLSYS_MODEL_STORE",
        "Model store URL: gs:// (one bucket per env) or file:///path (one folder per bucket). "
        "Default: file:// under MLSYS_HOME/models.",
        None,
    )

    # --- Job service --------------------------------------------------------------------
    redis_url: str = _env(
        "REDIS_URL",
        "Redis: the Celery broker and the job store. rediss://...?ssl_ca_certs=/path/ca.pem "
        "verifies the server against that CA (Memorystore with transit encryption).",
        "redis://localhost:6379/0",
    )
    api_url: str = _env("MLSYS_API_URL", "Where the CLI finds the API.", "http://localhost:8000")
    api_tokens: Annotated[list[SecretStr], NoDecode] = _env(
        "MLSYS_API_TOKENS",
        "Comma-separated bearer tokens the API accepts (several, so they can rotate). "
        "Empty: authentication is off (local demo only; logged loudly).",
        [],
    )
    api_token: SecretStr | None = _env(
        "MLSYS_API_TOKEN", "Token the CLI sends to MLSYS_API_URL.", None
    )

    # --- Trust boundary (README "Security") ------------------------------------------------
    api_principals: SecretStr | None = _env(
        "MLSYS_API_PRINCIPALS",
        "Named principals as JSON: a list of {name, token_sha256: [hex, ...], scopes: "
        "[predict|truncate|registry|admin], input_datasets, output_datasets} (globs over "
        "project.dataset). Stores SHA-256 hashes of tokens, never tokens.",
        None,
    )
    api_principals_file: Path | None = _env(
        "MLSYS_API_PRINCIPALS_FILE",
        "A file holding the MLSYS_API_PRINCIPALS JSON (e.g. a Secret Manager volume).",
        None,
    )
    require_auth: bool = _env(
        "MLSYS_REQUIRE_AUTH",
        "Refuse to start the API without tokens or principals (fail closed). The container "
        "entry point turns it on; only a local run may go without authentication.",
        False,
    )
    allowed_hosts: Annotated[list[str], NoDecode] = _env(
        "MLSYS_ALLOWED_HOSTS",
        "Comma-separated Host names the API answers (globs such as *.run.app; * for any). "
        "Others get 400: a web page cannot reach a local API through DNS rebinding.",
        ["localhost", "127.0.0.1", "::1"],
    )
    open_get_submits: bool = _env(
        "MLSYS_OPEN_GET_SUBMITS",
        "With authentication off, let the seed's job-starting GET aliases (/predict, "
        "/model-registry) run. Off by default: any web page could start jobs with an <img>.",
        False,
    )
    submit_rate_limit: str = _env(
        "MLSYS_SUBMIT_RATE_LIMIT",
        "Per-principal limit on job-submitting routes, flask-limiter syntax "
        "(e.g. '30/minute;500/hour'); empty disables.",
        "30/minute;500/hour",
    )
    recovery_timeout: float = _env(
        "MLSYS_RECOVERY_TIMEOUT",
        "Seconds a dead worker's task can go unnoticed before it is run again elsewhere "
        "(the lease a running task renews by heartbeat).",
        60.0,
        gt=0,
    )
    max_attempts: int = _env(
        "MLSYS_MAX_ATTEMPTS",
        "How many times one step of a job is started (first run + redeliveries) before the job "
        "fails; stops a poison task from looping forever.",
        3,
        ge=1,
    )
    batch_rows: int = _env(
        "MLSYS_BATCH_ROWS", "Rows per batch streamed through the model.", 100_000, ge=1
    )
    rows_per_shard: int = _env(
        "MLSYS_ROWS_PER_SHARD",
        "Target rows per shard when a job does not say `shards`.",
        2_000_000,
        ge=1,
    )
    max_shards: int = _env(
        "MLSYS_MAX_SHARDS", "Upper bound on shards per job (automatic or requested).", 64, ge=1
    )
    fair_lanes: int = _env(
        "MLSYS_FAIR_LANES",
        "Queues the starts of jobs are spread over by principal; workers take them in turn, "
        "so one principal's burst does not hold up the others (1: one FIFO of starts).",
        8,
        ge=1,
        le=64,
    )
    model_cache_mb: int = _env(
        "MLSYS_MODEL_CACHE_MB",
        "Verified models each process keeps loaded across jobs, in MB of artifact size "
        "(least recently used go first; 0 loads every time).",
        1024,
        ge=0,
    )
    duckdb_memory_limit: str | None = _env(
        "MLSYS_DUCKDB_MEMORY_LIMIT",
        "Memory DuckDB may use per process before it spills to disk (e.g. 2GB). "
        "Default: a quarter of the container's or machine's memory, at most 4GB.",
        None,
    )
    duckdb_threads: int | None = _env(
        "MLSYS_DUCKDB_THREADS",
        "Threads of each DuckDB connection. Default: the CPUs this process may use "
        "(container quota and affinity).",
        None,
        ge=1,
    )
    duckdb_lock_wait: float = _env(
        "MLSYS_DUCKDB_LOCK_WAIT",
        "Seconds an embedded-warehouse call waits for another process to release the file.",
        120.0,
        gt=0,
    )
    duckdb_commit_memory: str = _env(
        "MLSYS_DUCKDB_COMMIT_MEMORY",
        "DuckDB's memory cap while a job's commit appends its rows (it spills beyond it).",
        "128MB",
    )
    duckdb_snapshot_memory: str = _env(
        "MLSYS_DUCKDB_SNAPSHOT_MEMORY",
        "DuckDB's memory cap while it copies a job's input to the job's snapshot (an "
        "incremental run's anti-join keeps MLSYS_DUCKDB_MEMORY_LIMIT and spills beyond it).",
        "256MB",
    )
    duckdb_evaluation_memory: str = _env(
        "MLSYS_DUCKDB_EVALUATION_MEMORY",
        "DuckDB's memory cap while an evaluate job joins predictions with labels (it spills "
        "beyond it, so a worker's memory does not grow with the tables).",
        "512MB",
    )
    predict_workers: int | None = _env(
        "MLSYS_PREDICT_WORKERS",
        "Processes `mlsys predict` runs shards in. Default: the CPUs this process may use.",
        None,
        ge=1,
    )
    job_keep_seconds: int = _env(
        "MLSYS_JOB_KEEP_SECONDS",
        "Seconds a job's record (and its idempotency key) stays after the job ended.",
        7 * 24 * 3600,
        gt=0,
    )
    index_prune_seconds: float = _env(
        "MLSYS_INDEX_PRUNE_SECONDS",
        "Seconds between passes that drop expired jobs from the job-listing indexes (one "
        "worker runs each pass).",
        300.0,
        gt=0,
    )
    job_live_seconds: int = _env(
        "MLSYS_JOB_LIVE_SECONDS",
        "Seconds a queued or running job's record stays without activity; every claim, "
        "heartbeat and progress report renews it, so only a job nothing works on expires.",
        2 * 24 * 3600,
        gt=0,
    )
    task_time_limit: int = _env(
        "MLSYS_TASK_TIME_LIMIT",
        "Hard time limit of one task, seconds (soft limit is 95%).",
        6 * 3600,
    )
    alias_wait_seconds: float = _env(
        "MLSYS_ALIAS_WAIT_SECONDS",
        "How long PUT /models/{name}/aliases/{alias} waits for the worker's alias move before "
        "it answers 202 with the job (below the request timeouts of gunicorn and Cloud Run).",
        20.0,
        ge=0,
    )
    spool_bytes: int = _env(
        "MLSYS_SPOOL_BYTES",
        "Largest local Parquet spool of a shard's output before it is loaded into BigQuery "
        "(Cloud Run's local disk is memory: this bounds it). A shard larger than one spool is "
        "loaded in parts.",
        64 * 1024 * 1024,
        ge=1,
    )
    spool_dir: Path | None = _env(
        "MLSYS_SPOOL_DIR",
        "Folder of those spools (e.g. a disk-backed mount). Default: the system's temp folder.",
        None,
    )
    container_memory: str | None = _env(
        "MLSYS_CONTAINER_MEMORY",
        "Memory limit of the container (Kubernetes/Cloud Run quantity: 4Gi, 512Mi); bounds "
        "each worker process' memory. Default: the cgroup's limit, if any.",
        None,
    )
    worker_concurrency: int | None = _env(
        "MLSYS_WORKER_CONCURRENCY",
        "Worker processes per worker container. Default: the CPUs Celery sees.",
        None,
        ge=1,
    )
    worker_nice: int = _env(
        "MLSYS_WORKER_NICE",
        "CPU priority the worker's pool processes lower themselves by (nice, 0-19), so that on a "
        "machine shared with the API (docker compose, honcho) a burst of jobs does not slow the "
        "answers to submits and status reads. 0 keeps the worker's own priority.",
        10,
        ge=0,
        le=19,
    )
    skops_trusted_types: Annotated[list[str], NoDecode] = _env(
        "MLSYS_SKOPS_TRUSTED_TYPES",
        "Comma-separated extra types a model.skops may contain (reviewed by you); skops' "
        "own safe types are always allowed.",
        [],
    )
    sync_wait_seconds: float = _env(
        "MLSYS_SYNC_WAIT_SECONDS",
        "Longest a request waits for its job (the seed's GET /predict and GET /model-registry, "
        "or Prefer: wait=N) before answering 202; keep it below the request timeouts of Cloud "
        "Run and gunicorn (60 s in this repository's configs).",
        50.0,
        ge=0,
    )
    max_waiting_requests: int | None = _env(
        "MLSYS_MAX_WAITING_REQUESTS",
        "Requests one web process lets wait for their jobs at once; the next ones answer 202 "
        "at once. Default: half the process' gunicorn threads (16 without gunicorn).",
        None,
        ge=1,
    )
    registry_sync_interval: float = _env(
        "MLSYS_REGISTRY_SYNC_INTERVAL",
        "Seconds between periodic registry syncs run by beat (0 disables).",
        300.0,
        ge=0,
    )
    signin_rate_limit: str = _env(
        "MLSYS_SIGNIN_RATE_LIMIT",
        "Dashboard sign-ins allowed per client address and per token (flask-limiter syntax); "
        "empty disables.",
        "10/minute;100/hour",
    )
    ui_sessions_per_principal: int = _env(
        "MLSYS_UI_SESSIONS_PER_PRINCIPAL",
        "Open dashboard sessions per principal; signing in once more ends its oldest one.",
        20,
        ge=1,
    )
    schedules_per_principal: int = _env(
        "MLSYS_SCHEDULES_PER_PRINCIPAL",
        "Most schedules one principal may have at once (an admin too); creating one more is "
        "refused with 409.",
        50,
        ge=1,
    )
    schedule_min_interval: float = _env(
        "MLSYS_SCHEDULE_MIN_INTERVAL",
        "Shortest interval_seconds a schedule may ask for (seconds).",
        60.0,
        gt=0,
    )
    monitoring: bool = _env(
        "MLSYS_MONITORING",
        "Profile every predict job's input and predictions and compare them with the model's "
        "training profile (stored in mlsys_{env}.prediction_stats).",
        True,
    )
    drift_thresholds: dict[str, float] = _env(
        "MLSYS_DRIFT_THRESHOLDS",
        'JSON object overriding when drift warns or alerts, e.g. {"psi_warn": 0.2}. Keys: '
        "psi_warn (0.1), psi_alert (0.25), null_warn (0.05), null_alert (0.2) - absolute "
        "change of the null rate -, unseen_warn (0.01), unseen_alert (0.05) - share of "
        "category values never seen in training.",
        {},
    )

    @field_validator("environments", mode="before")
    @classmethod
    def _split_envs(cls, value):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_tokens", "skops_trusted_types", "allowed_hosts", mode="before")
    @classmethod
    def _split_tokens(cls, value):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    # --- Derived names --------------------------------------------------------------------
    @property
    def warehouse(self) -> str:
        return self.warehouse_url or f"duckdb:///{(self.home / 'warehouse.duckdb').resolve()}"

    @property
    def model_store(self) -> str:
        return self.model_store_url or _file_uri(str(self.home), "models", os.getcwd())

    @property
    def staging_dir(self) -> Path:
        """Where the embedded backends keep job snapshots and staged output."""
        return self.home / "staging"

    def check_env(self, env: str) -> str:
        if env not in self.environments:
            raise UnknownEnvironment(
                f"Unknown environment {env!r}.",
                hint=f"Use one of: {', '.join(self.environments)} (MLSYS_ENVIRONMENTS).",
            )
        return env

    def bucket_for(self, env: str) -> str:
        """Model bucket of an environment (GCS_BUCKET_MODELS_{ENV}, default mlsys-models-{env})."""
        self.check_env(env)
        return getattr(self, f"gcs_bucket_models_{env}", None) or f"mlsys-models-{env}"

    def dataset_for(self, env: str) -> str:
        """Dataset of mlsys' own tables in an environment: mlsys_{env}."""
        self.check_env(env)
        return f"{self.bq_dataset}_{env}"

    def redis_tls(self) -> dict[str, object] | None:
        """TLS options of REDIS_URL for clients that ignore its query string (Celery's broker
        transport, redbeat): None for redis://; for rediss://, the server certificate is
        required and checked against `ssl_ca_certs` from the URL (or the system CAs).

        Memorystore's per-instance CA signs only that instance's certificate, which names no
        host, so the hostname is checked only when the URL asks (`ssl_check_hostname=true`).
        """
        url = urlsplit(self.redis_url)
        if url.scheme != "rediss":
            return None
        query = dict(parse_qsl(url.query))
        reqs = query.get("ssl_cert_reqs", "required").lower()
        options: dict[str, object] = {
            "ssl_cert_reqs": {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL}.get(
                reqs, ssl.CERT_REQUIRED
            ),
            "ssl_check_hostname": query.get("ssl_check_hostname", "false").lower() == "true",
        }
        if query.get("ssl_ca_certs"):
            options["ssl_ca_certs"] = query["ssl_ca_certs"]
        return options

    def memory_limit_bytes(self) -> int | None:
        """The container's memory limit: MLSYS_CONTAINER_MEMORY, else the cgroup's, else None."""
        if self.container_memory:
            return parse_quantity(self.container_memory)
        for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
            try:
                text = Path(path).read_text().strip()
            except OSError:
                continue
            if text.isdigit() and int(text) < 1 << 60:  # v1 writes a huge number for "none"
                return int(text)
        return None

    def memory_per_child_kib(self, concurrency: int) -> int:
        """Celery's worker_max_memory_per_child (KiB): 3/4 of the container's memory shared by
        its worker processes, leaving the rest to the parent and the spools; 4 GB unlimited."""
        limit = self.memory_limit_bytes()
        if limit is None:
            return 4_000_000
        return max(65_536, int(limit * 0.75 / max(1, concurrency) / 1024))

    def auto_shards(self, rows: int) -> int:
        return max(1, min(self.max_shards, math.ceil(rows / self.rows_per_shard)))


_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def parse_quantity(text: str) -> int:
    """Bytes of a memory quantity as Cloud Run and Kubernetes write it (512Mi, 4Gi, 2G)."""
    number = text.rstrip("kMGi")
    unit = text[len(number) :]
    if unit not in _UNITS or not number.replace(".", "", 1).isdigit():
        raise ValueError(f"Not a memory quantity: {text!r} (use e.g. 512Mi or 4Gi).")
    return int(float(number) * _UNITS[unit])


@functools.lru_cache(maxsize=256)
def _file_uri(home: str, folder: str, cwd: str) -> str:
    """`home/folder` resolved against `cwd`, as a file:// URI. Cached: resolving walks the
    file system, and the registry asks once per row it reads."""
    return (Path(cwd) / home / folder).resolve().as_uri()


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


#: The seed's module-level names (`from mlsys.settings import GCS_BUCKET_MODELS_DEV`), read
#: from the same Settings as everything else, at the moment they are imported.
SEED_NAMES = {
    "GCP_PROJECT_ID": "gcp_project_id",
    "GCP_REGION": "gcp_region",
    "BQ_DATASET": "bq_dataset",
    "GCS_BUCKET_MODELS_DEV": "gcs_bucket_models_dev",
    "GCS_BUCKET_MODELS_STAGING": "gcs_bucket_models_staging",
    "GCS_BUCKET_MODELS_PROD": "gcs_bucket_models_prod",
}


def __getattr__(name: str):
    if name in SEED_NAMES:
        return getattr(get_settings(), SEED_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *SEED_NAMES])
