# Model artifacts: {model-name}/v{N}/model.pkl (or model.skops) + metadata.json.
resource "google_storage_bucket" "models" {
  count = var.prevent_destroy ? 0 : 1

  #checkov:skip=CKV_GCP_62:usage-log buckets are legacy; enable Cloud Audit Logs (Data Access) for GCS to log artifact reads
  project                     = var.project_id
  name                        = local.bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = local.labels

  # The registry records each artifact's generation: an overwritten model.pkl stays
  # recoverable, and a job pinned to a generation keeps loading the bytes it was registered with.
  versioning {
    enabled = true
  }

  # Noncurrent (overwritten or deleted) artifacts are kept 90 days, then removed.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 90
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  soft_delete_policy {
    retention_duration_seconds = 604800
  }

  depends_on = [google_project_service.apis]
}

# The same, in staging and prod: Terraform refuses any plan that would destroy or replace it
# (a changed location, a rename, `terraform destroy`). `prevent_destroy` cannot take a variable,
# hence the twin; infra/envs/{staging,prod}/main.tf move existing state onto it.
resource "google_storage_bucket" "models_protected" {
  count = var.prevent_destroy ? 1 : 0

  #checkov:skip=CKV_GCP_62:usage-log buckets are legacy; enable Cloud Audit Logs (Data Access) for GCS to log artifact reads
  project                     = var.project_id
  name                        = local.bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = local.labels

  # The registry records each artifact's generation: an overwritten model.pkl stays
  # recoverable, and a job pinned to a generation keeps loading the bytes it was registered with.
  versioning {
    enabled = true
  }

  # Noncurrent (overwritten or deleted) artifacts are kept 90 days, then removed.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 90
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  soft_delete_policy {
    retention_duration_seconds = 604800
  }

  depends_on = [google_project_service.apis]

  lifecycle {
    prevent_destroy = true
  }
}
