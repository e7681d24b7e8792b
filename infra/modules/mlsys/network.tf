# A VPC per environment: Cloud Run reaches Memorystore through Direct VPC egress into this
# subnet; Memorystore sits in a range peered through private services access.
resource "google_compute_network" "vpc" {
  project                 = var.project_id
  name                    = "${local.prefix}-${local.env}"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [google_project_service.apis]
}

resource "google_compute_subnetwork" "run" {
  project                  = var.project_id
  name                     = "${local.prefix}-${local.env}-run"
  region                   = var.region
  network                  = google_compute_network.vpc.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.1
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Nothing outside the VPC may open a connection into it (Cloud Run egress only goes out).
resource "google_compute_firewall" "deny_ingress" {
  project   = var.project_id
  name      = "${local.prefix}-${local.env}-deny-ingress"
  network   = google_compute_network.vpc.id
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Private services access: the range Memorystore takes its address from.
resource "google_compute_global_address" "services" {
  project       = var.project_id
  name          = "${local.prefix}-${local.env}-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 24
  network       = google_compute_network.vpc.id
}

resource "google_service_networking_connection" "services" {
  network                 = google_compute_network.vpc.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.services.name]
  # Removing the peering fails while the producer side still holds addresses (Memorystore
  # deletes asynchronously); abandon it on destroy instead of failing the whole destroy.
  deletion_policy = "ABANDON"
}
