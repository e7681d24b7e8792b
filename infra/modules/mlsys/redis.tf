# Broker and job store. Memorystore for Redis persists with RDB snapshots (AOF is offered only
# by Memorystore for Redis Cluster / Valkey); an hourly snapshot plus STANDARD_HA replication in
# prod bounds what a failure can lose, and every job record is also re-derivable from its task.
resource "google_redis_instance" "broker" {
  count = var.prevent_destroy ? 0 : 1

  project            = var.project_id
  name               = "${local.prefix}-${local.env}"
  display_name       = "mlsys ${local.env} broker and job store"
  region             = var.region
  tier               = var.redis_tier
  memory_size_gb     = var.redis_memory_size_gb
  redis_version      = "REDIS_7_2"
  authorized_network = google_compute_network.vpc.id
  connect_mode       = "PRIVATE_SERVICE_ACCESS"
  reserved_ip_range  = google_compute_global_address.services.name
  auth_enabled       = true

  # TLS from the start: switching it on later replaces the instance (ForceNew), losing every
  # queued job. Clients use rediss:// on port 6378 and verify server_ca_certs (secrets.tf).
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  persistence_config {
    persistence_mode    = "RDB"
    rdb_snapshot_period = "ONE_HOUR"
  }

  # Celery keeps its queues as lists and job state as keys: nothing may be evicted.
  redis_configs = {
    "maxmemory-policy" = "noeviction"
  }

  maintenance_policy {
    weekly_maintenance_window {
      day = "SUNDAY"
      start_time {
        hours   = 3
        minutes = 0
        seconds = 0
        nanos   = 0
      }
    }
  }

  labels = local.labels

  depends_on = [google_service_networking_connection.services]
}

# The same, in staging and prod: Terraform refuses any plan that would destroy or replace it
# (a changed location, a rename, `terraform destroy`). `prevent_destroy` cannot take a variable,
# hence the twin; infra/envs/{staging,prod}/main.tf move existing state onto it.
resource "google_redis_instance" "broker_protected" {
  count = var.prevent_destroy ? 1 : 0

  project            = var.project_id
  name               = "${local.prefix}-${local.env}"
  display_name       = "mlsys ${local.env} broker and job store"
  region             = var.region
  tier               = var.redis_tier
  memory_size_gb     = var.redis_memory_size_gb
  redis_version      = "REDIS_7_2"
  authorized_network = google_compute_network.vpc.id
  connect_mode       = "PRIVATE_SERVICE_ACCESS"
  reserved_ip_range  = google_compute_global_address.services.name
  auth_enabled       = true

  # TLS from the start: switching it on later replaces the instance (ForceNew), losing every
  # queued job. Clients use rediss:// on port 6378 and verify server_ca_certs (secrets.tf).
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  persistence_config {
    persistence_mode    = "RDB"
    rdb_snapshot_period = "ONE_HOUR"
  }

  # Celery keeps its queues as lists and job state as keys: nothing may be evicted.
  redis_configs = {
    "maxmemory-policy" = "noeviction"
  }

  maintenance_policy {
    weekly_maintenance_window {
      day = "SUNDAY"
      start_time {
        hours   = 3
        minutes = 0
        seconds = 0
        nanos   = 0
      }
    }
  }

  labels = local.labels

  depends_on = [google_service_networking_connection.services]

  lifecycle {
    prevent_destroy = true
  }
}
