resource "google_bigquery_dataset" "mlsys" {
  count = var.prevent_destroy ? 0 : 1

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

# The same, in staging and prod: Terraform refuses any plan that would destroy or replace it
# (a changed location, a rename, `terraform destroy`). `prevent_destroy` cannot take a variable,
# hence the twin; infra/envs/{staging,prod}/main.tf move existing state onto it.
resource "google_bigquery_dataset" "mlsys_protected" {
  count = var.prevent_destroy ? 1 : 0

  #checkov:skip=CKV_GCP_81:Google-managed encryption at rest; CMEK (a KMS key ring per env) is an opt-in this module does not impose
  project                    = var.project_id
  dataset_id                 = local.dataset_id
  friendly_name              = "mlsys ${local.env}"
  description                = "mlsys' own tables in ${local.env}: the model registry."
  location                   = var.bq_location
  delete_contents_on_destroy = !var.deletion_protection
  labels                     = local.labels

  depends_on = [google_project_service.apis]

  lifecycle {
    prevent_destroy = true
  }
}

# One row per (environment, model_name, model_version); the registry sync MERGEs into it.
resource "google_bigquery_table" "model_registry" {
  count = var.prevent_destroy ? 0 : 1

  #checkov:skip=CKV_GCP_80:Google-managed encryption at rest; CMEK is an opt-in this module does not impose
  #checkov:skip=CKV_GCP_121:deletion protection follows var.deletion_protection: on in staging and prod, off in dev by design
  project             = var.project_id
  dataset_id          = local.dataset.dataset_id
  table_id            = "model_registry"
  description         = "Models registered from gs://${local.bucket_name}: one row per version, integrity and lifecycle included."
  deletion_protection = var.deletion_protection
  clustering          = ["model_name"]
  labels              = local.labels

  # The one definition is mlsys/tables.py (`python -m mlsys.tables` writes this file);
  # tests/unit/test_infra_tables.py checks that both agree.
  schema = file("${path.module}/schemas/model_registry.json")
}

# The same, in staging and prod: Terraform refuses any plan that would destroy or replace it
# (a changed location, a rename, `terraform destroy`). `prevent_destroy` cannot take a variable,
# hence the twin; infra/envs/{staging,prod}/main.tf move existing state onto it.
resource "google_bigquery_table" "model_registry_protected" {
  count = var.prevent_destroy ? 1 : 0

  #checkov:skip=CKV_GCP_80:Google-managed encryption at rest; CMEK is an opt-in this module does not impose
  #checkov:skip=CKV_GCP_121:deletion protection follows var.deletion_protection: on in staging and prod, off in dev by design
  project             = var.project_id
  dataset_id          = local.dataset.dataset_id
  table_id            = "model_registry"
  description         = "Models registered from gs://${local.bucket_name}: one row per version, integrity and lifecycle included."
  deletion_protection = var.deletion_protection
  clustering          = ["model_name"]
  labels              = local.labels

  # The one definition is mlsys/tables.py (`python -m mlsys.tables` writes this file);
  # tests/unit/test_infra_tables.py checks that both agree.
  schema = file("${path.module}/schemas/model_registry.json")

  lifecycle {
    prevent_destroy = true
  }
}

# Monitoring: what mlsys.prediction_stats writes after each predict job.
resource "google_bigquery_table" "prediction_stats" {
  count = var.prevent_destroy ? 0 : 1

  #checkov:skip=CKV_GCP_80:Google-managed encryption at rest; CMEK is an opt-in this module does not impose
  #checkov:skip=CKV_GCP_121:deletion protection follows var.deletion_protection: on in staging and prod, off in dev by design
  project             = var.project_id
  dataset_id          = local.dataset.dataset_id
  table_id            = "prediction_stats"
  description         = "Per-feature drift of each predict job against the model's training profile: one row per (job_id, feature)."
  deletion_protection = var.deletion_protection
  clustering          = ["model_name", "job_id"]
  labels              = local.labels

  time_partitioning {
    type  = "DAY"
    field = "computed_at"
  }

  schema = file("${path.module}/schemas/prediction_stats.json")
}

resource "google_bigquery_table" "prediction_stats_protected" {
  count = var.prevent_destroy ? 1 : 0

  #checkov:skip=CKV_GCP_80:Google-managed encryption at rest; CMEK is an opt-in this module does not impose
  #checkov:skip=CKV_GCP_121:deletion protection follows var.deletion_protection: on in staging and prod, off in dev by design
  project             = var.project_id
  dataset_id          = local.dataset.dataset_id
  table_id            = "prediction_stats"
  description         = "Per-feature drift of each predict job against the model's training profile: one row per (job_id, feature)."
  deletion_protection = var.deletion_protection
  clustering          = ["model_name", "job_id"]
  labels              = local.labels

  time_partitioning {
    type  = "DAY"
    field = "computed_at"
  }

  schema = file("${path.module}/schemas/prediction_stats.json")

  lifecycle {
    prevent_destroy = true
  }
}

# Evaluation: what mlsys.evaluation writes after each evaluate job.
resource "google_bigquery_table" "evaluations" {
  count = var.prevent_destroy ? 0 : 1

  #checkov:skip=CKV_GCP_80:Google-managed encryption at rest; CMEK is an opt-in this module does not impose
  #checkov:skip=CKV_GCP_121:deletion protection follows var.deletion_protection: on in staging and prod, off in dev by design
  project             = var.project_id
  dataset_id          = local.dataset.dataset_id
  table_id            = "evaluations"
  description         = "Metrics of predictions against labels that landed later: one row per (job_id, model_name, model_version, day)."
  deletion_protection = var.deletion_protection
  clustering          = ["model_name", "model_version"]
  labels              = local.labels

  time_partitioning {
    type  = "DAY"
    field = "evaluated_at"
  }

  schema = file("${path.module}/schemas/evaluations.json")
}

resource "google_bigquery_table" "evaluations_protected" {
  count = var.prevent_destroy ? 1 : 0

  #checkov:skip=CKV_GCP_80:Google-managed encryption at rest; CMEK is an opt-in this module does not impose
  #checkov:skip=CKV_GCP_121:deletion protection follows var.deletion_protection: on in staging and prod, off in dev by design
  project             = var.project_id
  dataset_id          = local.dataset.dataset_id
  table_id            = "evaluations"
  description         = "Metrics of predictions against labels that landed later: one row per (job_id, model_name, model_version, day)."
  deletion_protection = var.deletion_protection
  clustering          = ["model_name", "model_version"]
  labels              = local.labels

  time_partitioning {
    type  = "DAY"
    field = "evaluated_at"
  }

  schema = file("${path.module}/schemas/evaluations.json")

  lifecycle {
    prevent_destroy = true
  }
}
