# One-time setup that the environments depend on, applied by a project owner from a laptop:
#   - the Terraform state buckets {prefix}-mlsys-terraform-state-{dev,staging,prod} (prefix: the
#     project id unless bucket_prefix says otherwise; bucket names are global)
#   - one deployer service account per environment (mlsys-deployer-{dev,staging,prod}) and a
#     read-only planner (mlsys-planner) that GitHub Actions impersonate
#   - Workload Identity Federation: a pool and a GitHub OIDC provider restricted to one
#     repository; each account bound to the GitHub environment (or pull requests) that uses it
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

# Coming from the predecessor (bucket_prefix = ""), its state buckets exist already: adopt
# them in this same apply instead of failing to create them (409).
import {
  for_each = var.adopt_state_buckets ? local.state_buckets : {}

  to = google_storage_bucket.tf_state[each.key]
  id = "${var.project_id}/${each.value}"
}

# --- Deployer identities: one per environment, and a read-only planner ----------------------
# Every identity and binding below waits for the APIs above: on a fresh project the IAM API
# answers "has not been used in project" until its enablement has gone through.
resource "google_service_account" "deployer" {
  for_each = toset(local.environments)

  project      = var.project_id
  account_id   = "mlsys-deployer-${each.value}"
  display_name = "mlsys ${each.value} deployer (GitHub Actions: Terraform apply, image push, Cloud Run deploy)"

  depends_on = [google_project_service.apis]
}

# What `terraform apply` of infra/envs/* and the deploy steps need in this project. The three
# environments share the project, so these roles are project-wide for each deployer; what keeps
# them apart is who can act as which (the bindings below) and whose state each may write. Give
# each environment a project of its own for a hard boundary.
resource "google_project_iam_member" "deployer" {
  #checkov:skip=CKV_GCP_41:the deployer deploys Cloud Run revisions that run as the runtime service accounts (actAs); only this repository's workflows can use it (WIF)
  #checkov:skip=CKV_GCP_49:the deployer is Terraform: it creates the runtime service accounts and deploys as them; only this repository's workflows can use it (WIF)
  for_each = {
    for pair in setproduct(local.environments, var.deployer_roles) : "${pair[0]}/${pair[1]}" => {
      env  = pair[0]
      role = pair[1]
    }
  }

  project = var.project_id
  role    = each.value.role
  member  = google_service_account.deployer[each.value.env].member

  depends_on = [google_project_service.apis]
}

# Each deployer writes the state of its own environment only.
resource "google_storage_bucket_iam_member" "deployer_state" {
  for_each = google_storage_bucket.tf_state

  bucket = each.value.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.deployer[each.key].member
}

# Pull requests plan with this one: it reads the state buckets and nothing else (no project
# role). Their plans use -refresh=false and -lock=false (.github/workflows/pr.yml): the
# recorded state is all they need to show what the change would do, so no API is asked and no
# secret's value is read with it.
resource "google_service_account" "planner" {
  project      = var.project_id
  account_id   = "mlsys-planner"
  display_name = "mlsys read-only planner (GitHub Actions: terraform plan of pull requests)"

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_iam_member" "planner_state" {
  for_each = google_storage_bucket.tf_state

  bucket = each.value.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.planner.member
}

# --- Workload Identity Federation ----------------------------------------------------------
resource "google_iam_workload_identity_pool" "github" {
  project                   = var.project_id
  workload_identity_pool_id = "github"
  display_name              = "GitHub Actions"
  description               = "OIDC tokens of GitHub Actions runs"

  depends_on = [google_project_service.apis]
}

locals {
  repo = var.github_repository
  # The OIDC token's subject names the GitHub environment of a job that has one
  # (repo:OWNER/NAME:environment:NAME) and the event of a pull request's job
  # (repo:OWNER/NAME:pull_request). Who may act as which account, by subject:
  deployer_subjects = {
    dev     = ["environment:dev"]
    staging = ["environment:staging"]
    # production-plan (no reviewers) plans; production (required reviewers) applies that plan.
    prod = ["environment:production", "environment:production-plan"]
  }
  planner_subjects = ["pull_request"]
  # Subjects whose tokens are refused unless the run is of refs/heads/main.
  main_only          = ["environment:staging", "environment:production", "environment:production-plan"]
  main_only_subjects = [for s in local.main_only : "repo:${local.repo}:${s}"]
}

resource "google_iam_workload_identity_pool_provider" "github" {
  #checkov:skip=CKV_GCP_125:the condition pins the exact GitHub-issued repository claim and, for staging and production, the ref; the bindings pin the subject (environment or pull_request)
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

  # Only runs of this one repository can exchange a token at all, and a staging or production
  # environment's token only from a run of main: a branch that names the environment in its
  # own workflow gets nothing (GitHub's branch rules on the environment are a second lock).
  attribute_condition = "assertion.repository == \"${local.repo}\" && (!(assertion.sub in ${jsonencode(local.main_only_subjects)}) || assertion.ref == \"refs/heads/main\")"

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }

  depends_on = [google_project_service.apis]
}

resource "google_service_account_iam_member" "deployer_wif" {
  for_each = merge([
    for env, subjects in local.deployer_subjects : {
      for subject in subjects : "${env}/${subject}" => { env = env, subject = subject }
    }
  ]...)

  service_account_id = google_service_account.deployer[each.value.env].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principal://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/subject/repo:${local.repo}:${each.value.subject}"
}

resource "google_service_account_iam_member" "planner_wif" {
  for_each = toset(local.planner_subjects)

  service_account_id = google_service_account.planner.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principal://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/subject/repo:${local.repo}:${each.value}"
}
