# Non-secret configuration of dev, committed: CI and local applies load it alike (an
# *.auto.tfvars file, which also wins over a local terraform.tfvars). Secrets never go here.
bq_location = "US"

# null: buckets are named {project_id}-mlsys-models-dev. "" keeps the predecessor's
# mlsys-models-dev (import it first: README "Deploying to Google Cloud").
bucket_prefix = null

worker_instances = 1
flower_enabled   = true

allow_unauthenticated = false
invoker_members       = [] # e.g. ["group:ml-team@example.com"]
flower_members        = [] # e.g. ["group:ml-platform@example.com"]
model_writers         = [] # e.g. ["group:data-scientists@example.com"]
input_datasets        = [] # e.g. ["titanic"]
output_datasets       = [] # e.g. ["titanic_predictions"]
