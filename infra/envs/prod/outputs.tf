output "service_url" {
  description = "URL of the API."
  value       = module.mlsys.service_url
}

output "flower_url" {
  description = "URL of Flower (null when disabled); open it with `gcloud run services proxy`."
  value       = module.mlsys.flower_url
}

output "models_bucket" {
  description = "Model artifacts bucket."
  value       = module.mlsys.models_bucket
}

output "dataset" {
  description = "BigQuery dataset of the registry."
  value       = module.mlsys.dataset
}

output "registry_table" {
  description = "Model registry table."
  value       = module.mlsys.registry_table
}

output "redis_host" {
  description = "Memorystore address."
  value       = module.mlsys.redis_host
}

output "image_repository" {
  description = "Where CI pushes images."
  value       = module.mlsys.image_repository
}

output "worker_pool" {
  description = "Celery worker pool name."
  value       = module.mlsys.worker_pool
}

output "beat_pool" {
  description = "Beat worker pool name."
  value       = module.mlsys.beat_pool
}

output "service_accounts" {
  description = "Runtime service accounts."
  value       = module.mlsys.service_accounts
}
