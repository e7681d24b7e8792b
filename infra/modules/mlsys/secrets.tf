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

resource "google_secret_manager_secret" "flower_basic_auth" {
  project   = var.project_id
  secret_id = "${local.prefix}-flower-basic-auth-${local.env}"
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
  secret_data = (
    var.redis_transit_encryption
    ? "rediss://:${google_redis_instance.broker.auth_string}@${google_redis_instance.broker.host}:${google_redis_instance.broker.port}/0?ssl_cert_reqs=required&ssl_ca_certs=${local.redis_ca_path}"
    : "redis://:${google_redis_instance.broker.auth_string}@${google_redis_instance.broker.host}:${google_redis_instance.broker.port}/0"
  )
}

# The instance's server CA (public data), mounted as a file when transit encryption is on.
resource "google_secret_manager_secret" "redis_ca" {
  count = var.redis_transit_encryption ? 1 : 0

  project   = var.project_id
  secret_id = "${local.prefix}-redis-ca-${local.env}"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "redis_ca" {
  count = var.redis_transit_encryption ? 1 : 0

  secret      = google_secret_manager_secret.redis_ca[0].id
  secret_data = join("\n", [for ca in google_redis_instance.broker.server_ca_certs : ca.cert])
}

locals {
  # Who reads which secret.
  secret_readers = merge(
    {
      "api_tokens/web"         = { secret = google_secret_manager_secret.api_tokens.id, member = google_service_account.web.member }
      "flower_basic_auth/flwr" = { secret = google_secret_manager_secret.flower_basic_auth.id, member = google_service_account.flower.member }
      "redis_url/web"          = { secret = google_secret_manager_secret.redis_url.id, member = google_service_account.web.member }
      "redis_url/worker"       = { secret = google_secret_manager_secret.redis_url.id, member = google_service_account.worker.member }
      "redis_url/flower"       = { secret = google_secret_manager_secret.redis_url.id, member = google_service_account.flower.member }
    },
    var.redis_transit_encryption ? {
      "redis_ca/web"    = { secret = google_secret_manager_secret.redis_ca[0].id, member = google_service_account.web.member }
      "redis_ca/worker" = { secret = google_secret_manager_secret.redis_ca[0].id, member = google_service_account.worker.member }
      "redis_ca/flower" = { secret = google_secret_manager_secret.redis_ca[0].id, member = google_service_account.flower.member }
    } : {},
  )
}

resource "google_secret_manager_secret_iam_member" "readers" {
  for_each = local.secret_readers

  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}
