locals {
  env    = var.environment
  prefix = "mlsys"

  # Names kept from the predecessor deployment (see README "Deploying to GCP").
  service_name  = "${local.prefix}-${local.env}"
  repository_id = "${local.prefix}-${local.env}"
  # Bucket names are global: prefixed with the project id by default ("" gives the seed's
  # mlsys-models-{env}; README "Deploying to Google Cloud" shows how to import those).
  bucket_prefix = var.bucket_prefix == null ? var.project_id : var.bucket_prefix
  bucket_name   = join("-", compact([local.bucket_prefix, "${local.prefix}-models-${local.env}"]))
  dataset_id    = "${local.prefix}_${local.env}"

  labels = merge(var.labels, {
    app         = local.prefix
    environment = local.env
    managed-by  = "terraform"
  })

  # Same environment for the four processes; each adds its own secrets.
  common_env = {
    GCP_PROJECT_ID                          = var.project_id
    GCP_REGION                              = var.region
    MLSYS_BQ_LOCATION                       = var.bq_location
    MLSYS_ENVIRONMENTS                      = local.env
    MLSYS_WAREHOUSE                         = "bigquery://${var.project_id}"
    MLSYS_MODEL_STORE                       = "gs://"
    "GCS_BUCKET_MODELS_${upper(local.env)}" = local.models_bucket.name
    MLSYS_REGISTRY_SYNC_INTERVAL            = tostring(var.registry_sync_interval)
    MLSYS_HOME                              = "/tmp/mlsys"
  }

  redis_ca_path = "/etc/mlsys/redis-ca/ca.pem"

  # Stateful resources exist once, as the plain or the protected twin (var.prevent_destroy).
  dataset        = one(concat(google_bigquery_dataset.mlsys, google_bigquery_dataset.mlsys_protected))
  registry_table = one(concat(google_bigquery_table.model_registry, google_bigquery_table.model_registry_protected))
  models_bucket  = one(concat(google_storage_bucket.models, google_storage_bucket.models_protected))
  redis          = one(concat(google_redis_instance.broker, google_redis_instance.broker_protected))
}

# APIs this environment uses. disable_on_destroy = false: the three environments share one
# project, so destroying one must not switch an API off under the others.
resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "bigquerystorage.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "storage.googleapis.com",
  ])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
