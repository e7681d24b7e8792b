# Secret containers. Their values never pass through Terraform (or its state): add them out
# of band, before the first full apply (infra/README.md):
#   printf '%s' "$TOKENS" | gcloud secrets versions add mlsys-api-tokens-dev --data-file=-
resource "google_secret_manager_secret" "api_tokens" {
  project   = var.project_id
  secret_id = "${local.prefix}-api-tokens-${local.env}"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# REDIS_URL carries the Memorystore AUTH string, which Terraform reads from the instance
# anyway (it is in the state either way); keeping it in a secret keeps it out of the
# Cloud Run configuration that every viewer of the project can read.
resource "google_secret_manager_secret" "redis_url" {
  project   = var.project_id
  secret_id = "${local.prefix}-redis-url-${local.env}"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret = google_secret_manager_secret.redis_url.id
  # TLS (transit encryption) is on from the start: the clients verify the instance's own CA,
  # mounted at local.redis_ca_path (Celery's broker and redbeat take these options from
  # mlsys.settings.Settings.redis_tls, the job store from the URL itself).
  secret_data = "rediss://:${local.redis.auth_string}@${local.redis.host}:${local.redis.port}/0?ssl_cert_reqs=required&ssl_ca_certs=${local.redis_ca_path}&ssl_check_hostname=false"
}

# The instance's server CA (public data), mounted as a file into every process.
resource "google_secret_manager_secret" "redis_ca" {
  project   = var.project_id
  secret_id = "${local.prefix}-redis-ca-${local.env}"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "redis_ca" {
  secret      = google_secret_manager_secret.redis_ca.id
  secret_data = join("\n", [for ca in local.redis.server_ca_certs : ca.cert])
}

moved {
  from = google_secret_manager_secret.redis_ca[0]
  to   = google_secret_manager_secret.redis_ca
}

moved {
  from = google_secret_manager_secret_version.redis_ca[0]
  to   = google_secret_manager_secret_version.redis_ca
}

locals {
  # Who reads which secret: Cloud Run resolves them as the runtime account when an instance
  # starts. infra/permissions.toml lists the same (tests/unit/test_permissions.py).
  secret_readers = {
    api_tokens = ["web"]
    redis_url  = ["web", "worker", "flower"]
    redis_ca   = ["web", "worker", "flower"]
  }

  secret_ids = {
    api_tokens = google_secret_manager_secret.api_tokens.id
    redis_url  = google_secret_manager_secret.redis_url.id
    redis_ca   = google_secret_manager_secret.redis_ca.id
  }

  account_members = {
    web    = google_service_account.web.member
    worker = google_service_account.worker.member
    flower = google_service_account.flower.member
  }

  secret_bindings = merge([
    for secret, readers in local.secret_readers : {
      for reader in readers : "${secret}/${reader}" => {
        secret = local.secret_ids[secret]
        member = local.account_members[reader]
      }
    }
  ]...)
}

resource "google_secret_manager_secret_iam_member" "readers" {
  for_each = local.secret_bindings

  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}
