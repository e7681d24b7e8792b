variable "project_id" {
  description = "Google Cloud project of all three environments."
  type        = string
}

variable "region" {
  description = "Region of the state buckets."
  type        = string
}

variable "bucket_prefix" {
  description = "Prefix of the state buckets' names ({prefix}-mlsys-terraform-state-{env}); bucket names are global, so the default is the project id. \"\" gives the predecessor's mlsys-terraform-state-{env} (import them: README)."
  type        = string
  default     = null
}

variable "adopt_state_buckets" {
  description = "Import the existing state buckets (the predecessor's, with bucket_prefix = \"\") in the first apply instead of creating them."
  type        = bool
  default     = false
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows may deploy (e.g. acme/mlsys)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must look like owner/name."
  }
}

variable "deployer_roles" {
  description = "Project roles of each environment's deployer: enough to apply infra/envs/* (APIs, network, Memorystore, BigQuery, buckets, secrets, service accounts and their IAM) and to push and deploy images."
  type        = list(string)
  default = [
    "roles/artifactregistry.admin",
    "roles/bigquery.admin",
    "roles/compute.networkAdmin",
    "roles/compute.securityAdmin",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountUser",
    "roles/redis.admin",
    "roles/resourcemanager.projectIamAdmin",
    "roles/run.admin",
    "roles/secretmanager.admin",
    "roles/servicenetworking.networksAdmin",
    "roles/serviceusage.serviceUsageAdmin",
    "roles/storage.admin",
  ]
}
