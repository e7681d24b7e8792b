variable "project_id" {
  description = "Google Cloud project that holds every resource of this environment."
  type        = string
}

variable "region" {
  description = "Region of Cloud Run, Artifact Registry, the models bucket, the VPC subnet and Memorystore."
  type        = string
}

variable "environment" {
  description = "Environment name: dev, staging or prod. Suffixes every resource name."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

variable "bucket_prefix" {
  description = "Prefix of the models bucket's name ({prefix}-mlsys-models-{env}); bucket names are global, so the default is the project id. \"\" gives the predecessor's mlsys-models-{env}."
  type        = string
  default     = null
}

variable "prevent_destroy" {
  description = "Refuse any plan that destroys or replaces the dataset, the registry table, the models bucket or Memorystore (lifecycle prevent_destroy). On in staging and prod."
  type        = bool
  default     = true
}

variable "bq_location" {
  # No default: a location set in one place only (a local tfvars) would let CI replace the
  # dataset. Each environment commits it in infra/envs/{env}/config.auto.tfvars.
  description = "BigQuery location of the mlsys_{env} dataset and of mlsys' query jobs (e.g. US, EU, us-central1). Staging and commits run in mlsys_{env}, so every input and output dataset must be in this same location. Changing it replaces the dataset."
  type        = string
}

variable "image" {
  description = "Container image of the first deployment. CI deploys later images (Terraform ignores image changes), so this only matters when a service is created."
  type        = string
  default     = "us-docker.pkg.dev/cloudrun/container/hello"
}

variable "subnet_cidr" {
  description = "Primary range of the subnet that Cloud Run's Direct VPC egress takes addresses from (a /26 at least; Cloud Run uses up to 2 addresses per instance)."
  type        = string
  default     = "10.8.0.0/24"
}

variable "redis_tier" {
  description = "Memorystore tier: BASIC (one node) or STANDARD_HA (primary + replica across zones, automatic failover)."
  type        = string
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_memory_size_gb" {
  description = "Memorystore capacity in GiB (broker queues and job records are small)."
  type        = number
  default     = 1
}

variable "web_min_instances" {
  description = "Minimum instances of the web service (0 lets it scale to zero)."
  type        = number
  default     = 0
}

variable "web_max_instances" {
  description = "Maximum instances of the web service."
  type        = number
  default     = 4
}

variable "worker_instances" {
  description = "Instances of the Celery worker pool (manual scaling; each instance runs one worker with --concurrency = its CPUs). Change it here or with `gcloud beta run worker-pools update mlsys-worker-{env} --scaling N`."
  type        = number
  default     = 1

  validation {
    condition     = var.worker_instances >= 0
    error_message = "worker_instances must be 0 or more."
  }
}

variable "worker_cpu" {
  description = "CPUs of one worker instance (Cloud Run accepts 1, 2, 4, 6 or 8)."
  type        = string
  default     = "2"
}

variable "worker_memory" {
  description = "Memory of one worker instance; a prediction batch and the model must fit."
  type        = string
  default     = "4Gi"
}

variable "flower_enabled" {
  description = "Run Flower: one instance, always on (min and max 1, CPU always allocated), so its event history is complete. Costs one always-on instance."
  type        = bool
  default     = true
}

variable "allow_unauthenticated" {
  description = "Grant allUsers the Cloud Run invoker role on the web service, leaving authentication to the API's bearer tokens (MLSYS_API_TOKENS). Default false: callers also need roles/run.invoker (invoker_members)."
  type        = bool
  default     = false
}

variable "invoker_members" {
  description = "IAM members allowed to call the web service (e.g. group:ml-team@example.com, serviceAccount:...)."
  type        = list(string)
  default     = []
}

variable "flower_members" {
  description = "IAM members allowed to open Flower (roles/run.invoker on mlsys-flower-{env}, through `gcloud run services proxy`). Flower's basic auth applies besides."
  type        = list(string)
  default     = []
}

variable "model_writers" {
  description = "IAM members that upload model artifacts to the models bucket (roles/storage.objectAdmin there), e.g. group:data-scientists@example.com."
  type        = list(string)
  default     = []
}

variable "input_datasets" {
  description = "Datasets (in project_id) whose tables jobs read: the worker gets dataViewer and the web service metadataViewer (to check schemas) on each."
  type        = list(string)
  default     = []
}

variable "output_datasets" {
  description = "Datasets (in project_id) that jobs write predictions to: the worker gets dataEditor on each."
  type        = list(string)
  default     = []
}

variable "registry_sync_interval" {
  description = "Seconds between the periodic registry syncs that beat schedules (MLSYS_REGISTRY_SYNC_INTERVAL; 0 disables)."
  type        = number
  default     = 300
}

variable "deletion_protection" {
  description = "Protect the dataset's registry table, the bucket contents and the Cloud Run resources from terraform destroy. Off in dev only."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}
