# mlsys prod. State: gs://{prefix}-mlsys-terraform-state-prod, named at init time:
#   terraform init -backend-config="bucket=$(cd ../../bootstrap && terraform output -json state_buckets | jq -r .prod)"
# Non-secret settings are committed in config.auto.tfvars (CI applies the same); project_id and
# region come from TF_VAR_project_id / TF_VAR_region (the GitHub variables GCP_PROJECT_ID and
# GCP_REGION) or a local terraform.tfvars.
terraform {
  required_version = ">= 1.10.0"

  backend "gcs" {
    prefix = "mlsys/prod"
  }

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "mlsys" {
  source = "../../modules/mlsys"

  project_id      = var.project_id
  region          = var.region
  environment     = "prod"
  bq_location     = var.bq_location
  bucket_prefix   = var.bucket_prefix
  subnet_cidr     = "10.10.0.0/24"
  prevent_destroy = true

  redis_tier          = "STANDARD_HA"
  worker_instances    = var.worker_instances
  web_min_instances   = 1
  deletion_protection = true
  flower_enabled      = var.flower_enabled

  allow_unauthenticated = var.allow_unauthenticated
  invoker_members       = var.invoker_members
  flower_members        = var.flower_members
  model_writers         = var.model_writers
  input_datasets        = var.input_datasets
  output_datasets       = var.output_datasets
}

# This environment protects its state (prevent_destroy): existing state moves onto the module's
# protected twins. Safe to keep after the first apply (a no-op then).

moved {
  from = module.mlsys.google_bigquery_dataset.mlsys
  to   = module.mlsys.google_bigquery_dataset.mlsys_protected[0]
}

moved {
  from = module.mlsys.google_bigquery_table.model_registry
  to   = module.mlsys.google_bigquery_table.model_registry_protected[0]
}

moved {
  from = module.mlsys.google_storage_bucket.models
  to   = module.mlsys.google_storage_bucket.models_protected[0]
}

moved {
  from = module.mlsys.google_redis_instance.broker
  to   = module.mlsys.google_redis_instance.broker_protected[0]
}

moved {
  from = module.mlsys.google_bigquery_table.prediction_stats
  to   = module.mlsys.google_bigquery_table.prediction_stats_protected[0]
}
