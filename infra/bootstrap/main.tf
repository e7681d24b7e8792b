# One-time setup that the environments depend on, applied by a project owner from a laptop:
#   - the Terraform state buckets {prefix}-mlsys-terraform-state-{dev,staging,prod} (prefix: the
#     project id unless bucket_prefix says otherwise; bucket names are global)
#   - the deployer service account GitHub Actions impersonates (mlsys-github-actions)
#   - Workload Identity Federation: a pool and a GitHub OIDC provider restricted to one repository
# Its own state starts local; move it into the prod state bucket afterwards (infra/README.md).
terraform {
  required_version = ">= 1.10.0"

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

locals {
  environments  = ["dev", "staging", "prod"]
  bucket_prefix = var.bucket_prefix == null ? var.project_id : var.bucket_prefix
  state_buckets = {
    for env in local.environments : env => join("-", compact([local.bucket_prefix, "mlsys-terraform-state-${env}"]))
  }
}

resource "google_project_service" "apis" {
  for_each = toset([
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "serviceusage.googleapis.com",
    "sts.googleapis.com",
    "storage.googleapis.com",
  ])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# --- Terraform state ---------------------------------------------------------------------
resource "google_storage_bucket" "tf_state" {
  #checkov:skip=CKV_GCP_62:usage-log buckets are legacy; Cloud Audit Logs (Data Access for GCS) record state reads and writes
  for_each = toset(local.environments)

  project                     = var.project_id
  name                        = local.state_buckets[each.value]
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Every state write is a new generation: a bad apply can be rolled back.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 50
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle {
    prevent_destroy = true
  }

  depends_on = [google_project_service.apis]
}

# --- Deployer identity ---------------------------------------------------------------------
resource "google_service_account" "deployer" {
  project      = var.project_id
  account_id   = "mlsys-github-actions"
  display_name = "mlsys GitHub Actions deployer (Terraform apply, image push, Cloud Run deploy)"
}

# What `terraform apply` of infra/envs/* and the deploy steps need in this project.
resource "google_project_iam_member" "deployer" {
  #checkov:skip=CKV_GCP_41:the deployer deploys Cloud Run revisions that run as the runtime service accounts (actAs); only this repository's workflows can use it (WIF)
  #checkov:skip=CKV_GCP_49:the deployer is Terraform: it creates the runtime service accounts and deploys as them; only this repository's workflows can use it (WIF)
  for_each = toset(var.deployer_roles)

  project = var.project_id
  role    = each.value
  member  = google_service_account.deployer.member
}

resource "google_storage_bucket_iam_member" "deployer_state" {
  for_each = google_storage_bucket.tf_state

  bucket = each.value.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.deployer.member
}

# --- Workload Identity Federation ----------------------------------------------------------
resource "google_iam_workload_identity_pool" "github" {
  project                   = var.project_id
  workload_identity_pool_id = "github"
  display_name              = "GitHub Actions"
  description               = "OIDC tokens of GitHub Actions runs"

  depends_on = [google_project_service.apis]
}

resource "google_iam_workload_identity_pool_provider" "github" {
  #checkov:skip=CKV_GCP_125:the condition pins the exact GitHub-issued repository claim (same as the sub prefix repo:OWNER/NAME:); a sub equality would have to list every ref, PR and environment
  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.github.workload_identity_pool_id
  workload_identity_pool_provider_id = "github-oidc"
  display_name                       = "GitHub OIDC"

  attribute_mapping = {
    "google.subject"             = "assertion.sub"
    "attribute.repository"       = "assertion.repository"
    "attribute.repository_owner" = "assertion.repository_owner"
    "attribute.ref"              = "assertion.ref"
  }

  # Only runs of this one repository can exchange a token at all.
  attribute_condition = "assertion.repository == \"${var.github_repository}\""

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

resource "google_service_account_iam_member" "deployer_wif" {
  service_account_id = google_service_account.deployer.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/attribute.repository/${var.github_repository}"
}
