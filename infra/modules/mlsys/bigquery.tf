resource "google_bigquery_dataset" "mlsys" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption at rest; CMEK (a KMS key ring per env) is an opt-in this module does not impose
  project                    = var.project_id
  dataset_id                 = local.dataset_id
  friendly_name              = "mlsys ${local.env}"
  description                = "mlsys' own tables in ${local.env}: the model registry."
  location                   = var.bq_location
  delete_contents_on_destroy = !var.deletion_protection
  labels                     = local.labels

  depends_on = [google_project_service.apis]
}

# One row per (environment, model_name, model_version); the registry sync MERGEs into it.
resource "google_bigquery_table" "model_registry" {
  #checkov:skip=CKV_GCP_80:Google-managed encryption at rest; CMEK is an opt-in this module does not impose
  #checkov:skip=CKV_GCP_121:deletion protection follows var.deletion_protection: on in staging and prod, off in dev by design
  project             = var.project_id
  dataset_id          = google_bigquery_dataset.mlsys.dataset_id
  table_id            = "model_registry"
  description         = "Models registered from gs://${local.bucket_name}: one row per version, integrity and lifecycle included."
  deletion_protection = var.deletion_protection
  clustering          = ["model_name"]
  labels              = local.labels

  schema = jsonencode([
    { name = "model_name", type = "STRING", mode = "REQUIRED", description = "Model name, lowercase and hyphenated (titanic-survival)." },
    { name = "model_version", type = "INT64", mode = "REQUIRED", description = "Version number N of v{N}." },
    { name = "environment", type = "STRING", mode = "REQUIRED", description = "dev, staging or prod." },
    { name = "gcs_bucket", type = "STRING", mode = "NULLABLE", description = "Bucket of the artifact." },
    { name = "blob_path", type = "STRING", mode = "NULLABLE", description = "Object path of the artifact in the bucket." },
    { name = "file_size_bytes", type = "INT64", mode = "NULLABLE", description = "Artifact size." },
    { name = "upload_timestamp", type = "TIMESTAMP", mode = "NULLABLE", description = "When the artifact was uploaded." },
    { name = "uploader", type = "STRING", mode = "NULLABLE", description = "Who uploaded it, where known." },
    { name = "registered_at", type = "TIMESTAMP", mode = "NULLABLE", description = "When the registry first saw this version." },
    { name = "metadata", type = "STRING", mode = "NULLABLE", description = "metadata.json as JSON text." },
    { name = "sha256", type = "STRING", mode = "NULLABLE", description = "SHA-256 of the artifact, checked before loading." },
    { name = "md5_hash", type = "STRING", mode = "NULLABLE", description = "GCS MD5 (base64)." },
    { name = "crc32c", type = "STRING", mode = "NULLABLE", description = "GCS CRC32C (base64)." },
    { name = "generation", type = "INT64", mode = "NULLABLE", description = "GCS object generation of the registered bytes." },
    { name = "status", type = "STRING", mode = "NULLABLE", description = "Lifecycle status (e.g. registered, missing)." },
    { name = "aliases", type = "STRING", mode = "NULLABLE", description = "Aliases as a JSON list (e.g. [\"champion\"])." },
    { name = "updated_at", type = "TIMESTAMP", mode = "NULLABLE", description = "Last change of this row." },
  ])
}
