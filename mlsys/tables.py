"""The tables mlsys owns in `{project}.mlsys_{env}`: one definition each, in BigQuery's REST form.

Terraform creates them from `infra/modules/mlsys/schemas/{name}.json`; a test checks that those
files, and the `google_bigquery_table` resources that read them, say exactly what is here. The
registry code derives its Arrow schema from the same fields, so a column added here reaches the
sync, the embedded warehouse and Terraform together.

`python -m mlsys.tables` rewrites the JSON files from these definitions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Field = dict[str, Any]


def _f(name: str, kind: str, description: str, mode: str = "NULLABLE") -> Field:
    return {"name": name, "type": kind, "mode": mode, "description": description}


@dataclass(frozen=True)
class OwnedTable:
    """A table mlsys creates and writes in every environment's dataset."""

    name: str
    fields: tuple[Field, ...]
    clustering: tuple[str, ...] = ()
    #: Column of daily time partitioning, if any.
    partition_day: str | None = None

    def schema_json(self) -> str:
        """The schema as Terraform reads it (`schema = file(...)`)."""
        return json.dumps(list(self.fields), indent=2) + "\n"


#: The last column of every job-derived table. Last: BigQuery adds columns only at the end of a
#: schema, so a table made before it gains it in place (Terraform, or the first merge that
#: writes it).
OWNER = _f(
    "principal",
    "STRING",
    "Who submitted the job: its owner reads the row after the job's record expires.",
)

MODEL_REGISTRY = OwnedTable(
    name="model_registry",
    clustering=("model_name",),
    fields=(
        _f(
            "model_name",
            "STRING",
            "Model name, lowercase and hyphenated (titanic-survival).",
            "REQUIRED",
        ),
        _f("model_version", "INT64", "Version number N of v{N}.", "REQUIRED"),
        _f("environment", "STRING", "dev, staging or prod.", "REQUIRED"),
        _f("gcs_bucket", "STRING", "Bucket of the artifact."),
        _f("blob_path", "STRING", "Object path of the artifact in the bucket."),
        _f("file_size_bytes", "INT64", "Artifact size."),
        _f("upload_timestamp", "TIMESTAMP", "When the artifact was uploaded."),
        _f("uploader", "STRING", "Who uploaded it, where known."),
        _f("registered_at", "TIMESTAMP", "When the registry first saw this version."),
        _f("metadata", "STRING", "metadata.json as JSON text."),
        _f("sha256", "STRING", "SHA-256 of the artifact, checked before loading."),
        _f("md5_hash", "STRING", "GCS MD5 (base64)."),
        _f("crc32c", "STRING", "GCS CRC32C (base64)."),
        _f("generation", "INT64", "GCS object generation of the registered bytes."),
        _f("status", "STRING", "Lifecycle status: active, missing or invalid."),
        _f("aliases", "STRING", 'Aliases as a JSON list (e.g. ["champion"]).'),
        _f("updated_at", "TIMESTAMP", "Last change of this row."),
    ),
)

PREDICTION_STATS = OwnedTable(
    name="prediction_stats",
    clustering=("model_name", "job_id"),
    partition_day="computed_at",
    fields=(
        _f("job_id", "STRING", "Job whose input and predictions were profiled.", "REQUIRED"),
        _f("model_name", "STRING", "Model of the job."),
        _f("model_version", "INT64", "Version number of the model."),
        _f("feature", "STRING", "Input feature, or the prediction/probability.", "REQUIRED"),
        _f("kind", "STRING", "number or category."),
        _f("status", "STRING", "Drift verdict of the feature: ok, warn or alert."),
        _f("rows", "INT64", "Rows profiled."),
        _f("null_rate", "FLOAT64", "Share of NULLs in the job's input."),
        _f("null_rate_reference", "FLOAT64", "Share of NULLs in the training data."),
        _f("null_rate_change", "FLOAT64", "|null_rate - null_rate_reference|."),
        _f("psi", "FLOAT64", "Population stability index against the training profile."),
        _f("unseen_rate", "FLOAT64", "Share of categories unseen in training."),
        _f("unseen_examples", "STRING", "Some unseen categories, as a JSON list."),
        _f("mean", "FLOAT64", "Mean of a numeric feature."),
        _f("profile", "STRING", "The merged profile of the feature, as JSON."),
        _f("computed_at", "TIMESTAMP", "When the job's statistics were computed."),
        OWNER,
    ),
)

EVALUATIONS = OwnedTable(
    name="evaluations",
    clustering=("model_name", "model_version"),
    partition_day="evaluated_at",
    fields=(
        _f("job_id", "STRING", "Evaluate job that computed the row.", "REQUIRED"),
        _f("model_name", "STRING", "Model whose predictions were evaluated.", "REQUIRED"),
        _f("model_version", "INT64", "Version number N of v{N}.", "REQUIRED"),
        _f("day", "DATE", "UTC day of the predictions (PredictionTimestamp).", "REQUIRED"),
        _f("task", "STRING", "classification or regression."),
        _f("output_table", "STRING", "Predictions table (project.dataset.table)."),
        _f("labels_table", "STRING", "Labels table (project.dataset.table)."),
        _f("rows", "INT64", "Predictions of the day in the window."),
        _f("matched", "INT64", "Predictions with a label."),
        _f("unmatched", "INT64", "Predictions without a label."),
        _f("accuracy", "FLOAT64", "Share of predicted classes equal to the label."),
        _f("roc_auc", "FLOAT64", "ROC AUC (binary: positive class; else one-vs-rest macro)."),
        _f("log_loss", "FLOAT64", "Mean log loss."),
        _f("brier", "FLOAT64", "Brier score."),
        _f("precision_macro", "FLOAT64", "Precision averaged over classes."),
        _f("recall_macro", "FLOAT64", "Recall averaged over classes."),
        _f("f1_macro", "FLOAT64", "F1 averaged over classes."),
        _f("mae", "FLOAT64", "Mean absolute error."),
        _f("rmse", "FLOAT64", "Root mean squared error."),
        _f("r2", "FLOAT64", "Coefficient of determination."),
        _f("mape", "FLOAT64", "Mean absolute percentage error over non-zero labels."),
        _f(
            "status",
            "STRING",
            "Against the saved test_* metrics: ok, degraded, too_few_rows or no_promise.",
        ),
        _f("degraded", "STRING", "Metrics that fell beyond the threshold, as a JSON list."),
        _f(
            "details",
            "STRING",
            "Per-class metrics, confusion matrix, calibration, residual "
            "quantiles and the promise, as JSON.",
        ),
        _f("window_start", "TIMESTAMP", "Start of the window of prediction times."),
        _f("window_end", "TIMESTAMP", "End of the window (after the label delay)."),
        _f("evaluated_at", "TIMESTAMP", "When the job computed the row."),
        OWNER,
    ),
)

#: Every table mlsys owns, by name.
OWNED_TABLES: dict[str, OwnedTable] = {
    t.name: t for t in (MODEL_REGISTRY, PREDICTION_STATS, EVALUATIONS)
}


def arrow_fields(table: OwnedTable):
    """The table's Arrow schema, every column nullable (BigQuery enforces REQUIRED)."""
    import pyarrow as pa

    from mlsys.warehouse.bq_schema import arrow_schema

    return pa.schema([pa.field(f.name, f.type) for f in arrow_schema(list(table.fields))])


SCHEMA_DIR = Path(__file__).resolve().parent.parent / "infra" / "modules" / "mlsys" / "schemas"


def main() -> None:
    """Write infra/modules/mlsys/schemas/{name}.json from the definitions above."""
    for table in OWNED_TABLES.values():
        path = SCHEMA_DIR / f"{table.name}.json"
        path.write_text(table.schema_json())
        print(path)


if __name__ == "__main__":
    main()
