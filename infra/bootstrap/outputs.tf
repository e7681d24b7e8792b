output "workload_identity_provider" {
  description = "Set as the GitHub repository variable GCP_WORKLOAD_IDENTITY_PROVIDER."
  value       = google_iam_workload_identity_pool_provider.github.name
}

output "deployer_service_accounts" {
  description = "Deployer of each environment: set as the GitHub repository variables GCP_DEPLOYER_DEV, GCP_DEPLOYER_STAGING and GCP_DEPLOYER_PROD."
  value       = { for env, account in google_service_account.deployer : env => account.email }
}

output "planner_service_account" {
  description = "Read-only planner of pull requests: set as the GitHub repository variable GCP_PLANNER_SERVICE_ACCOUNT."
  value       = google_service_account.planner.email
}

output "state_buckets" {
  description = "Terraform state bucket of each environment, by environment (terraform init -backend-config=bucket=...; the GitHub variable TF_STATE_BUCKET_{ENV} when not the default)."
  value       = { for env, b in google_storage_bucket.tf_state : env => b.name }
}
