terraform {
  required_version = ">= 1.10.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.x: google_cloud_run_v2_worker_pool with manual scaling. The env roots pin the same
      # range and commit .terraform.lock.hcl for the exact build.
      version = ">= 7.0, < 8.0"
    }
  }
}
