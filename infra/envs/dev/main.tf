# mlsys dev. State: gs://{prefix}-mlsys-terraform-state-dev, named at init time:
#   terraform init -backend-config="bucket=$(cd ../../bootstrap && terraform output -json state_buckets | jq -r .dev)"
# Non-secret settings are committed in config.auto.tfvars (CI applies the same); project_id and
# region come from TF_VAR_project_id / TF_VAR_region (the GitHub variables GCP_PROJECT_ID and
# GCP_REGION) or a local terraform.tfvars.
terraform {
  required_version = ">= 1.10.0"

  backend "gcs" {
    prefix = "mlsys/dev"
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
  environment     = "dev"
  bq_location     = var.bq_location
  bucket_prefix   = var.bucket_prefix
  subnet_cidr     = "10.8.0.0/24"
  prevent_destroy = false

  redis_tier          = "BASIC"
  worker_instances    = var.worker_instances
  web_min_instances   = 0
  deletion_protection = false
  flower_enabled      = var.flower_enabled

  allow_unauthenticated = var.allow_unauthenticated
  invoker_members       = var.invoker_members
  flower_members        = var.flower_members
  model_writers         = var.model_writers
  input_datasets        = var.input_datasets
  output_datasets       = var.output_datasets
}
