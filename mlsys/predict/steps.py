"""The steps of a predict job: any fitted scikit-learn estimator over a warehouse table.

Pure: no Flask, no Celery. Progress and cancellation are callbacks; the job layer decides what
they do. A job is prepared (everything checkable is checked), its input is planned into shards,
each shard streams batches through the model into its own staging, and one atomic commit lands
all rows tagged with the job id. Memory is bounded by the batch size, not the table size. The
workers run these steps as Celery tasks; `mlsys.predict.local` runs them all in one process.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from mlsys.errors import Cancelled, InvalidRequest, SchemaMismatch
from mlsys.ids import check_column
from mlsys.models import labels
from mlsys.models.artifacts import MODEL_CACHE, load_verified, warn_on_version_drift
from mlsys.predict.columns import default_id_columns
from mlsys.predict.commit import check_output, commit_output
from mlsys.predict.incremental import check_keys, exclusion
from mlsys.predict.spec import (
    METADATA_COLUMNS,
    PROBABILITY_COLUMN,
    CancelCheck,
    Observer,
    PredictSpec,
    PreparedPredict,
    Progress,
    build_output_schema,
)
from mlsys.registry.entry import PENDING, RegistryEntry
from mlsys.registry.pending import infer_pending
from mlsys.registry.pinned import PinnedModel
from mlsys.registry.read import check_pinned, resolve
from mlsys.settings import Settings
from mlsys.store.base import ModelStore
from mlsys.warehouse.base import JobScope, ReadPlan, Warehouse


def prepare_predict(
    spec: PredictSpec,
    warehouse: Warehouse,
    settings: Settings,
    store: ModelStore | None = None,
) -> PreparedPredict:
    """Check everything that can be checked before any work starts (from the registry and the
    tables alone: no model is loaded, so the API process never unpickles anything).

    Args:
        store: given only where models may load (workers, the CLI): a version registered
            without metadata.json then has its features read off the model (mlsys.registry.pending).

    Raises:
        ModelNotFound / ArtifactIntegrityError: the model reference does not resolve.
        TableNotFound: the input table does not exist.
        SchemaMismatch: the input lacks a feature or id column, or the output table exists
            with other columns.
        TableNotEmpty: WRITE_EMPTY and the output table has rows.
        InvalidRequest: no column identifies a row, or the input has too many to copy.
        MetadataPending: the version's features are known only once a worker loads it.
    """
    # Without a store nothing is written (the API's checks): they share the warehouse with
    # other readers. With one, a pending version's inferred features are recorded.
    with warehouse.session(write=store is not None):
        return _prepare(spec, warehouse, settings, store)


def _prepare(
    spec: PredictSpec, warehouse: Warehouse, settings: Settings, store: ModelStore | None = None
) -> PreparedPredict:
    entry: RegistryEntry = resolve(warehouse, settings, spec.env, spec.model)
    if entry.status == PENDING:
        entry = infer_pending(entry, warehouse, store, settings)
    meta = entry.metadata
    features = entry.features
    if not features:
        raise InvalidRequest(
            f"{entry.model_name}/{entry.version} does not record its feature columns.",
            hint="Fit it on a DataFrame (feature_names_in_) or save it with "
            "mlsys.models.artifacts.save_model, which writes metadata.json with 'features'.",
        )
    target = check_column(meta.get("target") or "prediction")
    # The worker reads the task and classes off the model itself (labels.py); metadata only
    # shapes this early check of the output table.
    task = labels.task_from_metadata(meta)
    input_schema = warehouse.schema(spec.input_table)
    id_columns = list(spec.id_columns or meta.get("id_columns") or [])
    if not id_columns:
        # As Vertex AI batch prediction does: keep the input's other columns beside the output.
        reserved = {target, PROBABILITY_COLUMN, *METADATA_COLUMNS}
        id_columns = default_id_columns(input_schema.names, features, reserved, spec.input_table)
    missing = [c for c in dict.fromkeys(features + id_columns) if c not in input_schema.names]
    if missing:
        raise SchemaMismatch(
            f"Input table {spec.input_table} lacks column(s) {missing} that "
            f"{entry.model_name}/{entry.version} needs.",
            hint=f"It has {input_schema.names}; the model reads {features} "
            f"and the job keeps {id_columns} as ids.",
        )
    clash = {target, PROBABILITY_COLUMN, *METADATA_COLUMNS} & set(id_columns)
    if clash:
        raise InvalidRequest(f"id_columns {sorted(clash)} clash with output columns.")
    if spec.mode == "incremental":
        check_keys(spec.key_columns, id_columns)
    schema = build_output_schema(input_schema, id_columns, target, task, meta.get("classes"))
    _check_output(warehouse, spec, schema)
    return PreparedPredict(
        spec=spec,
        model=PinnedModel.of(entry),
        features=features,
        id_columns=id_columns,
        target=target,
        task=task,
        rows_total=warehouse.count_rows(spec.input_table),
        output_schema_b64=base64.b64encode(schema.serialize().to_pybytes()).decode(),
        reference_profile=meta.get("profile") if settings.monitoring else None,
    )


def _check_output(warehouse: Warehouse, spec: PredictSpec, schema: pa.Schema) -> None:
    check_output(
        warehouse, spec.output_table, schema.names, spec.write_disposition, spec.model.name
    )


def plan_shards(
    prepared: PreparedPredict,
    warehouse: Warehouse,
    settings: Settings,
    job_id: str,
    shards: int | None = None,
) -> ReadPlan:
    """Freeze the input read for a job, in `shards` parts (default: the spec's, else automatic
    from the table size)."""
    spec = prepared.spec
    shards = shards or spec.shards or settings.auto_shards(prepared.rows_total)
    columns = list(dict.fromkeys(prepared.id_columns + prepared.features))
    exclude = exclusion(spec, prepared.model, prepared.id_columns)
    scope = JobScope(job_id, spec.env)
    return warehouse.plan_read(spec.input_table, columns, shards, scope, exclude)


def load_model(model: PinnedModel, store: ModelStore, settings: Settings) -> Any:
    """The job's pinned model, verified; kept loaded across jobs (MLSYS_MODEL_CACHE_MB)."""
    MODEL_CACHE.resize(settings.model_cache_mb * 2**20)
    warn_on_version_drift(model.ref, dict(model.library_versions))
    return load_verified(
        store,
        model.gcs_bucket,
        model.blob_path,
        sha256=model.sha256,
        generation=model.generation,
        artifact_format=model.artifact_format,
        trusted_types=tuple(settings.skops_trusted_types),
    )


def output_schema_for(prepared: PreparedPredict, model: Any, warehouse: Warehouse) -> pa.Schema:
    """The output schema as the loaded model dictates it: its task and the type of its
    classes win over metadata (which may lack them). Every shard derives the same one."""
    declared = prepared.output_schema
    task = labels.model_task(model) or prepared.task
    classes = labels.model_classes(model) if task == "classification" else None
    if task == prepared.task and classes is None:
        return declared
    fields = [declared.field(c) for c in prepared.id_columns]
    target = declared.field(prepared.target)
    known = classes is not None or task == "regression"  # else keep what metadata said
    fields.append(target.with_type(labels.target_type(task, classes)) if known else target)
    if task == "classification":
        fields.append(pa.field(PROBABILITY_COLUMN, pa.float64()))
    fields += [declared.field(c) for c in METADATA_COLUMNS]
    schema = pa.schema(fields)
    if schema.names != declared.names:  # metadata guessed the task wrong: check again
        _check_output(warehouse, prepared.spec, schema)
    return schema


def predict_batch(
    model: Any, batch: pa.RecordBatch, prepared: PreparedPredict, schema: pa.Schema, job_id: str
) -> pa.RecordBatch:
    """Predictions for one batch, in the output schema (from `output_schema_for`).

    Raises:
        ModelFailed: the estimator raised on this batch.
    """
    frame = batch.select(prepared.features).to_pandas()
    n = batch.num_rows
    columns = [batch.column(c) for c in prepared.id_columns]
    classification = PROBABILITY_COLUMN in schema.names
    out = labels.predict(model, frame, "classification" if classification else "regression")
    columns.append(labels.label_array(out.labels, schema.field(prepared.target).type))
    if classification:
        columns.append(
            pa.nulls(n, pa.float64())
            if out.probability is None
            else pa.array(out.probability, type=pa.float64(), from_pandas=True)
        )
    now = pa.scalar(datetime.now(UTC), type=pa.timestamp("us", tz="UTC"))
    columns += [
        pa.repeat(now, n),
        pa.repeat(pa.scalar(prepared.model.model_name), n),
        pa.repeat(pa.scalar(prepared.model.version), n),
        pa.repeat(pa.scalar(job_id), n),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def run_shard(
    prepared: PreparedPredict,
    shard: dict[str, Any],
    shard_index: int,
    job_id: str,
    warehouse: Warehouse,
    store: ModelStore,
    settings: Settings,
    progress: Progress | None = None,
    cancelled: CancelCheck | None = None,
    observe: Observer | None = None,
) -> int:
    """Predict one shard into its staging (replacing an earlier attempt's). Returns rows."""
    check_pinned(warehouse, settings, prepared.env, prepared.model)
    model = load_model(prepared.model, store, settings)
    schema = output_schema_for(prepared, model, warehouse)
    scope = JobScope(job_id, prepared.env)
    warehouse.check_shard(shard, scope)  # the plan came from Redis: not trusted

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in warehouse.read_shard(shard, settings.batch_rows):
            if cancelled is not None and cancelled():
                raise Cancelled(f"Job {job_id} was cancelled.")
            out = predict_batch(model, batch, prepared, schema, job_id)
            if observe is not None:
                observe(batch, out)
            yield out
            if progress is not None:
                progress(out.num_rows)

    return warehouse.stage(scope, shard_index, batches(), schema)


def commit_job(
    prepared: PreparedPredict,
    warehouse: Warehouse,
    job_id: str,
    shard_count: int,
) -> tuple[int, bool]:
    result = commit_output(
        warehouse,
        JobScope(job_id, prepared.env),
        prepared.spec.output_table,
        shard_count,
        prepared.spec.write_disposition,
    )
    return result.rows, result.already_committed


def shards_for_slots(prepared: PreparedPredict, settings: Settings, slots: int) -> int | None:
    """Shards for a job that `slots` processes can run at once (the local pool of `mlsys
    predict`, or every worker of the service): one per slot once each gets at least a full
    batch, and a multiple of the slots used, so that none is left running the last shard
    alone (None: the spec's or the automatic count)."""
    if prepared.spec.shards or slots <= 1:
        return None
    useful = min(slots, prepared.rows_total // settings.batch_rows)
    if useful <= 1:
        return None
    shards = max(settings.auto_shards(prepared.rows_total), useful)
    balanced = math.ceil(shards / useful) * useful
    return balanced if balanced <= settings.max_shards else shards
