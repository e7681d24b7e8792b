# One identity per process role, each with only what it does:
#   web    (mlsys-sa-{env}, the predecessor's name): enqueues jobs, reads the registry and the
#          schemas of input tables, answers /ready.
#   worker (mlsys-worker-{env}, also beat): reads input tables and models, writes predictions
#          and the registry.
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
# Running query and load jobs, and Storage Read API sessions, are project-level permissions.
resource "google_project_iam_member" "worker_project" {
  for_each = toset([
    "roles/bigquery.jobUser",
    "roles/bigquery.readSessionUser",
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.worker.member
}

resource "google_project_iam_member" "web_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.web.member
}

resource "google_bigquery_dataset_iam_member" "worker_registry" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.mlsys.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.worker.member
}

resource "google_bigquery_dataset_iam_member" "web_registry" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.mlsys.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = google_service_account.web.member
}

resource "google_bigquery_dataset_iam_member" "worker_inputs" {
  for_each = toset(var.input_datasets)

  project    = var.project_id
  dataset_id = each.value
  role       = "roles/bigquery.dataViewer"
  member     = google_service_account.worker.member
}

resource "google_bigquery_dataset_iam_member" "web_inputs" {
  for_each = toset(var.input_datasets)

  project    = var.project_id
  dataset_id = each.value
  role       = "roles/bigquery.metadataViewer"
  member     = google_service_account.web.member
}

resource "google_bigquery_dataset_iam_member" "worker_outputs" {
  for_each = toset(var.output_datasets)

  project    = var.project_id
  dataset_id = each.value
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.worker.member
}

# --- Models bucket ----------------------------------------------------------------------
# The services only read artifacts; people (or a training pipeline) upload them.
resource "google_storage_bucket_iam_member" "worker_models" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.worker.member
}

resource "google_storage_bucket_iam_member" "web_models" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.web.member
}

resource "google_storage_bucket_iam_member" "model_writers" {
  for_each = toset(var.model_writers)

  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectAdmin"
  member = each.value
}
