# project_id and region come from CI (TF_VAR_*) or a local terraform.tfvars; everything else is
# committed in config.auto.tfvars, which Terraform loads on its own (and which wins over
# terraform.tfvars), so a local apply and CI apply the same configuration.
variable "project_id" {
  description = "Google Cloud project of the dev environment."
  type        = string
}

variable "region" {
  description = "Region of the dev environment (e.g. europe-west1)."
  type        = string
}

variable "bq_location" {
  description = "BigQuery location of mlsys_dev; every input and output dataset must be there too. Changing it replaces the dataset."
  type        = string
}

variable "bucket_prefix" {
  description = "Prefix of the models bucket name (null: the project id; \"\": the predecessor's mlsys-models-dev)."
  type        = string
  default     = null
}

variable "worker_instances" {
  description = "Celery worker instances (Cloud Run worker pool, manual scaling)."
  type        = number
}

variable "flower_enabled" {
  description = "Run Flower (one instance, always on, so its event history survives)."
  type        = bool
}

variable "allow_unauthenticated" {
  description = "Let anyone reach the API through Cloud Run and rely on bearer tokens alone."
  type        = bool
}

variable "invoker_members" {
  description = "Members allowed to call the API (roles/run.invoker)."
  type        = list(string)
}

variable "flower_members" {
  description = "Members allowed to open Flower (roles/run.invoker)."
  type        = list(string)
}

variable "model_writers" {
  description = "Members that upload model artifacts to the models bucket."
  type        = list(string)
}

variable "input_datasets" {
  description = "Datasets (in project_id, in bq_location) whose tables jobs read."
  type        = list(string)
}

variable "output_datasets" {
  description = "Datasets (in project_id, in bq_location) that jobs write predictions to."
  type        = list(string)
}
