# mlsys prod. State: gs://mlsys-terraform-state-prod (create it first: infra/README.md).
terraform {
  required_version = ">= 1.10.0"

  backend "gcs" {
    bucket = "mlsys-terraform-state-prod"
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

  project_id  = var.project_id
  region      = var.region
  environment = "prod"
  bq_location = var.bq_location
  subnet_cidr = "10.10.0.0/24"

  redis_tier          = "STANDARD_HA"
  worker_instances    = var.worker_instances
  web_min_instances   = 1
  deletion_protection = true

  allow_unauthenticated = var.allow_unauthenticated
  invoker_members       = var.invoker_members
  flower_members        = var.flower_members
  model_writers         = var.model_writers
  input_datasets        = var.input_datasets
  output_datasets       = var.output_datasets
}
