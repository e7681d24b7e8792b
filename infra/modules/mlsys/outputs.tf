output "service_url" {
  description = "URL of the web service (mlsys-{env})."
  value       = google_cloud_run_v2_service.web.uri
}

output "flower_url" {
  description = "URL of Flower (null when disabled). Open it through `gcloud run services proxy mlsys-flower-{env} --port=5555`: it needs roles/run.invoker (flower_members) and basic auth."
  value       = one(google_cloud_run_v2_service.flower[*].uri)
}

output "models_bucket" {
  description = "Bucket of model artifacts (mlsys-models-{env})."
  value       = local.models_bucket.name
}

output "dataset" {
  description = "BigQuery dataset of mlsys' own tables (mlsys_{env})."
  value       = local.dataset.dataset_id
}

output "registry_table" {
  description = "Fully qualified model registry table."
  value       = "${var.project_id}.${local.dataset.dataset_id}.${local.registry_table.table_id}"
}

output "redis_host" {
  description = "Private address of the Memorystore instance."
  value       = local.redis.host
}

output "redis_port" {
  description = "Port of the Memorystore instance (6378 with transit encryption)."
  value       = local.redis.port
}

output "image_repository" {
  description = "Artifact Registry path images are pushed to: {region}-docker.pkg.dev/{project}/mlsys-{env}."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "worker_pool" {
  description = "Name of the Celery worker pool."
  value       = google_cloud_run_v2_worker_pool.pool["worker"].name
}

output "beat_pool" {
  description = "Name of the beat worker pool."
  value       = google_cloud_run_v2_worker_pool.pool["beat"].name
}

output "service_accounts" {
  description = "Runtime service accounts by role."
  value = {
    web    = google_service_account.web.email
    worker = google_service_account.worker.email
    flower = google_service_account.flower.email
  }
}

output "secrets" {
  description = "Secret Manager secrets whose values are added out of band."
  value = {
    api_tokens = google_secret_manager_secret.api_tokens.secret_id
  }
}
