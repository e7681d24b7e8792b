# One identity per process role, each with only what it does. infra/permissions.toml lists the
# API calls behind every binding below (and in secrets.tf); tests/unit/test_permissions.py checks
# that these are exactly the bindings it lists.
#   web    (mlsys-sa-{env}, the predecessor's name): only reads. Enqueues jobs, reads the
#          registry (tabledata.list: no read sessions) and the metadata of input and output
#          tables, answers /ready; its only query jobs are the monitoring reads.
#   worker (mlsys-worker-{env}, also beat): every write. Reads input tables and models, writes
#          predictions, the registry and its aliases.
#   flower (mlsys-flower-{env}): talks to Redis only.
resource "google_service_account" "web" {
  project      = var.project_id
  account_id   = "${local.prefix}-sa-${local.env}"
  display_name = "mlsys ${local.env} web"
}

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = "${local.prefix}-worker-${local.env}"
  display_name = "mlsys ${local.env} worker and beat"
}

resource "google_service_account" "flower" {
  project      = var.project_id
  account_id   = "${local.prefix}-flower-${local.env}"
  display_name = "mlsys ${local.env} flower"
}

# --- BigQuery ---------------------------------------------------------------------------
# Query and load jobs and Storage Read sessions are project-level permissions: the worker's only.
resource "google_project_iam_member" "worker_project" {
  for_each = toset([
    "roles/bigquery.jobUser",
    "roles/bigquery.readSessionUser",
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.worker.member
}

# Staging, the registry MERGE and alias moves: the worker writes mlsys' own dataset ...
resource "google_bigquery_dataset_iam_member" "worker_registry" {
  project    = var.project_id
  dataset_id = local.dataset.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.worker.member
}

# The monitoring read (GET /models/{name}/versions/{v}/monitoring) and the dashboard's job
# chart filter prediction_stats by model or job: a query job, so the web runs jobs too. It can
# read nothing but mlsys_{env} (dataViewer below; metadataViewer elsewhere), so its queries can
# read and bill only that dataset's tables.
resource "google_project_iam_member" "web_jobs" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.web.member
}

# ... and the web service reads the registry there with tabledata.list (tables.getData).
resource "google_bigquery_dataset_iam_member" "web_registry" {
  project    = var.project_id
  dataset_id = local.dataset.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = google_service_account.web.member
}

# Inputs that are not also outputs (an output dataset's dataEditor covers reading it).
resource "google_bigquery_dataset_iam_member" "worker_inputs" {
  for_each = toset(setsubtract(var.input_datasets, var.output_datasets))

  project    = var.project_id
  dataset_id = each.value
  role       = "roles/bigquery.dataViewer"
  member     = google_service_account.worker.member
}

resource "google_bigquery_dataset_iam_member" "worker_outputs" {
  for_each = toset(var.output_datasets)

  project    = var.project_id
  dataset_id = each.value
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.worker.member
}

# The API checks input and output tables (schema, row count) before it queues a job: metadata
# of both, no data.
resource "google_bigquery_dataset_iam_member" "web_tables" {
  for_each = toset(setunion(var.input_datasets, var.output_datasets))

  project    = var.project_id
  dataset_id = each.value
  role       = "roles/bigquery.metadataViewer"
  member     = google_service_account.web.member
}

moved {
  from = google_bigquery_dataset_iam_member.web_inputs
  to   = google_bigquery_dataset_iam_member.web_tables
}

# --- Models bucket ----------------------------------------------------------------------
# The services only read artifacts; people (or a training pipeline) upload them.
resource "google_storage_bucket_iam_member" "worker_models" {
  bucket = local.models_bucket.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.worker.member
}

resource "google_storage_bucket_iam_member" "web_models" {
  bucket = local.models_bucket.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.web.member
}

resource "google_storage_bucket_iam_member" "model_writers" {
  for_each = toset(var.model_writers)

  bucket = local.models_bucket.name
  role   = "roles/storage.objectAdmin"
  member = each.value
}
