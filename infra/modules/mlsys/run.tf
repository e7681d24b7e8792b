# Four Cloud Run resources run the one image (the first argument picks the process):
#   mlsys-{env}         service      web (gunicorn)            ingress all, IAM and/or bearer tokens
#   mlsys-worker-{env}  worker pool  celery worker             worker_instances, manual scaling
#   mlsys-beat-{env}    worker pool  celery beat               exactly 1 instance
#   mlsys-flower-{env}  service      flower                    IAM only (flower_members)
# CI deploys new images (gcloud run deploy / worker-pools deploy); Terraform ignores the image.

locals {
  vpc_network    = google_compute_network.vpc.id
  vpc_subnetwork = google_compute_subnetwork.run.id
  # Every process mounts the Memorystore CA (REDIS_URL names the file).
  redis_tls = [google_secret_manager_secret.redis_ca.secret_id]
}

resource "google_cloud_run_v2_service" "web" {
  project             = var.project_id
  name                = local.service_name
  location            = var.region
  description         = "mlsys ${local.env} API"
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection
  labels              = local.labels

  template {
    service_account = google_service_account.web.email
    timeout         = "60s"
    # = gunicorn workers x threads below: requests wait in Cloud Run, not in a busy instance.
    max_instance_request_concurrency = 16

    scaling {
      min_instance_count = var.web_min_instances
      max_instance_count = var.web_max_instances
    }

    vpc_access {
      network_interfaces {
        network    = local.vpc_network
        subnetwork = local.vpc_subnetwork
      }
      # Only private ranges (Memorystore) go through the VPC; Google APIs go direct.
      egress = "PRIVATE_RANGES_ONLY"
    }

    containers {
      image = var.image
      args  = ["web"]

      ports {
        container_port = 8000
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "1Gi"
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.common_env
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name = "REDIS_URL"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.redis_url.secret_id
            version = "latest"
          }
        }
      }

      env {
        name  = "WEB_CONCURRENCY"
        value = "2"
      }

      env {
        name  = "GUNICORN_THREADS"
        value = "8"
      }

      # WEB_CONCURRENCY gunicorn workers: each counts requests here, /metrics sums them all.
      env {
        name  = "PROMETHEUS_MULTIPROC_DIR"
        value = "/tmp/mlsys-prometheus"
      }

      # Cloud Run's front end is the only way in: trust its X-Forwarded-* (https URLs).
      env {
        name  = "FORWARDED_ALLOW_IPS"
        value = "*"
      }

      # The Host check (MLSYS_ALLOWED_HOSTS) stops DNS rebinding of an API on a developer's
      # machine; a public service that requires tokens gains nothing from it, and Cloud Run's
      # probes and custom domains use other names than *.run.app.
      env {
        name  = "MLSYS_ALLOWED_HOSTS"
        value = "*"
      }

      # Fail closed (also the image's default for `start web`): no tokens, no revision.
      env {
        name  = "MLSYS_REQUIRE_AUTH"
        value = "true"
      }

      env {
        name = "MLSYS_API_TOKENS"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.api_tokens.secret_id
            version = "latest"
          }
        }
      }

      startup_probe {
        http_get {
          path = "/health"
        }
        period_seconds    = 3
        timeout_seconds   = 2
        failure_threshold = 20
      }

      liveness_probe {
        http_get {
          path = "/health"
        }
        period_seconds  = 30
        timeout_seconds = 5
      }

      dynamic "volume_mounts" {
        for_each = local.redis_tls
        content {
          name       = "redis-ca"
          mount_path = dirname(local.redis_ca_path)
        }
      }
    }

    dynamic "volumes" {
      for_each = local.redis_tls
      content {
        name = "redis-ca"
        secret {
          secret = volumes.value
          items {
            version = "latest"
            path    = basename(local.redis_ca_path)
          }
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      client,
      client_version,
    ]
  }

  # Every secret an instance reads at start must exist with a value, and be readable, first:
  # a revision that starts without one fails, and replacing a failed service is what
  # deletion_protection refuses.
  depends_on = [
    google_secret_manager_secret_iam_member.readers,
    google_secret_manager_secret_version.redis_url,
    google_secret_manager_secret_version.redis_ca,
  ]
}

# Workers and beat: one image, two Cloud Run worker pools that differ only in these settings.
# Beat runs exactly one instance, always: do not scale it (redbeat's lock would idle a second).
locals {
  worker_pools = {
    worker = {
      description = "mlsys ${local.env} Celery workers"
      instances   = var.worker_instances
      args        = ["worker", "--concurrency", var.worker_cpu]
      cpu         = var.worker_cpu
      memory      = var.worker_memory
    }
    beat = {
      description = "mlsys ${local.env} Celery beat (exactly one instance)"
      instances   = 1
      args        = ["beat"]
      cpu         = "1"
      memory      = "512Mi"
    }
  }
}

resource "google_cloud_run_v2_worker_pool" "pool" {
  for_each = local.worker_pools

  project             = var.project_id
  name                = "${local.prefix}-${each.key}-${local.env}"
  location            = var.region
  description         = each.value.description
  deletion_protection = var.deletion_protection
  # Worker pools and their manual scaling started as preview features; BETA admits both
  # wherever they are not GA yet (the API reports the effective stage, hence ignore_changes).
  launch_stage = "BETA"
  labels       = local.labels

  scaling {
    scaling_mode          = "MANUAL"
    manual_instance_count = each.value.instances
  }

  template {
    service_account = google_service_account.worker.email

    vpc_access {
      network_interfaces {
        network    = local.vpc_network
        subnetwork = local.vpc_subnetwork
      }
      egress = "PRIVATE_RANGES_ONLY"
    }

    containers {
      image = var.image
      args  = each.value.args

      resources {
        limits = {
          cpu    = each.value.cpu
          memory = each.value.memory
        }
      }

      dynamic "env" {
        for_each = local.common_env
        content {
          name  = env.key
          value = env.value
        }
      }

      # worker_max_memory_per_child is a share of this limit (mlsys.settings).
      env {
        name  = "MLSYS_CONTAINER_MEMORY"
        value = each.value.memory
      }

      env {
        name  = "MLSYS_WORKER_CONCURRENCY"
        value = each.value.cpu
      }

      env {
        name = "REDIS_URL"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.redis_url.secret_id
            version = "latest"
          }
        }
      }

      dynamic "volume_mounts" {
        for_each = local.redis_tls
        content {
          name       = "redis-ca"
          mount_path = dirname(local.redis_ca_path)
        }
      }
    }

    dynamic "volumes" {
      for_each = local.redis_tls
      content {
        name = "redis-ca"
        secret {
          secret = volumes.value
          items {
            version = "latest"
            path    = basename(local.redis_ca_path)
          }
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      client,
      client_version,
      launch_stage,
    ]
  }

  # Every secret an instance reads at start must exist with a value, and be readable, first:
  # a revision that starts without one fails, and replacing a failed service is what
  # deletion_protection refuses.
  depends_on = [
    google_secret_manager_secret_iam_member.readers,
    google_secret_manager_secret_version.redis_url,
    google_secret_manager_secret_version.redis_ca,
  ]
}


moved {
  from = google_cloud_run_v2_worker_pool.worker
  to   = google_cloud_run_v2_worker_pool.pool["worker"]
}

moved {
  from = google_cloud_run_v2_worker_pool.beat
  to   = google_cloud_run_v2_worker_pool.pool["beat"]
}

# Flower: never public. Cloud Run IAM is the gate (roles/run.invoker for flower_members only,
# never allUsers); Flower's own basic auth is off here, since the way in, an authenticated
# proxy on your machine, replaces the browser's Authorization header with your identity token:
#   gcloud run services proxy mlsys-flower-{env} --region={region} --port=5555
# then open http://localhost:5555 (no login of Flower's own). Its API stays closed (no
# FLOWER_UNAUTHENTICATED_API).
# Exactly one instance, always on with CPU always allocated, while enabled: Flower builds its
# task history from the event stream, which a scaled-to-zero or throttled instance misses.
resource "google_cloud_run_v2_service" "flower" {
  count = var.flower_enabled ? 1 : 0

  project             = var.project_id
  name                = "${local.prefix}-flower-${local.env}"
  location            = var.region
  description         = "mlsys ${local.env} Flower (Celery monitoring)"
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection
  labels              = local.labels

  template {
    service_account = google_service_account.flower.email

    scaling {
      min_instance_count = 1
      max_instance_count = 1
    }

    vpc_access {
      network_interfaces {
        network    = local.vpc_network
        subnetwork = local.vpc_subnetwork
      }
      egress = "PRIVATE_RANGES_ONLY"
    }

    containers {
      image = var.image
      args  = ["flower"]

      ports {
        container_port = 5555
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle = false
      }

      env {
        name = "REDIS_URL"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.redis_url.secret_id
            version = "latest"
          }
        }
      }

      # Cloud Run IAM is Flower's gate (docker/start): `gcloud run services proxy` replaces
      # the browser's Authorization header with a Bearer identity token, which Flower's own
      # basic auth would refuse on every request.
      env {
        name  = "MLSYS_FLOWER_GATE"
        value = "cloud-run-iam"
      }

      env {
        name  = "MLSYS_ENVIRONMENTS"
        value = local.env
      }

      dynamic "volume_mounts" {
        for_each = local.redis_tls
        content {
          name       = "redis-ca"
          mount_path = dirname(local.redis_ca_path)
        }
      }
    }

    dynamic "volumes" {
      for_each = local.redis_tls
      content {
        name = "redis-ca"
        secret {
          secret = volumes.value
          items {
            version = "latest"
            path    = basename(local.redis_ca_path)
          }
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      client,
      client_version,
    ]
  }

  # Every secret an instance reads at start must exist with a value, and be readable, first:
  # a revision that starts without one fails, and replacing a failed service is what
  # deletion_protection refuses.
  depends_on = [
    google_secret_manager_secret_iam_member.readers,
    google_secret_manager_secret_version.redis_url,
    google_secret_manager_secret_version.redis_ca,
  ]
}

# --- Who may call what ---------------------------------------------------------------------
resource "google_cloud_run_v2_service_iam_member" "web_invokers" {
  for_each = toset(var.invoker_members)

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.web.name
  role     = "roles/run.invoker"
  member   = each.value
}

# Opt-in only: the API then relies on its bearer tokens alone (MLSYS_API_TOKENS).
resource "google_cloud_run_v2_service_iam_member" "web_public" {
  count = var.allow_unauthenticated ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.web.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_v2_service_iam_member" "flower_invokers" {
  for_each = var.flower_enabled ? toset(var.flower_members) : toset([])

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.flower[0].name
  role     = "roles/run.invoker"
  member   = each.value
}
