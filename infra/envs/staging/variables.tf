variable "project_id" {
  description = "Google Cloud project of the staging environment."
  type        = string
}

variable "region" {
  description = "Region of the staging environment (e.g. europe-west1)."
  type        = string
}

variable "bq_location" {
  description = "BigQuery location of mlsys_staging; put it where the input tables live."
  type        = string
  default     = "US"
}

variable "worker_instances" {
  description = "Celery worker instances (Cloud Run worker pool, manual scaling)."
  type        = number
  default     = 1
}

variable "allow_unauthenticated" {
  description = "Let anyone reach the API through Cloud Run and rely on bearer tokens alone."
  type        = bool
  default     = false
}

variable "invoker_members" {
  description = "Members allowed to call the API (roles/run.invoker)."
  type        = list(string)
  default     = []
}

variable "flower_members" {
  description = "Members allowed to open Flower (roles/run.invoker)."
  type        = list(string)
  default     = []
}

variable "model_writers" {
  description = "Members that upload model artifacts to mlsys-models-staging."
  type        = list(string)
  default     = []
}

variable "input_datasets" {
  description = "Datasets whose tables jobs read."
  type        = list(string)
  default     = []
}

variable "output_datasets" {
  description = "Datasets that jobs write predictions to."
  type        = list(string)
  default     = []
}
