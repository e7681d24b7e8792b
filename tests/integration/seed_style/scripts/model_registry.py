"""Model registration, written the way the seed project's scripts/model_registry.py is: scan
the bucket with gcs_list_blobs, read each Blob's attributes, append rows with bq_put."""

import json
from datetime import UTC, datetime

import fire
import pandas as pd

from mlsys.bq import bq_put
from mlsys.gcs import gcs_get, gcs_list_blobs
from mlsys.settings import (
    GCP_PROJECT_ID,
    GCS_BUCKET_MODELS_DEV,
    GCS_BUCKET_MODELS_PROD,
    GCS_BUCKET_MODELS_STAGING,
)

BUCKETS = {
    "dev": GCS_BUCKET_MODELS_DEV,
    "staging": GCS_BUCKET_MODELS_STAGING,
    "prod": GCS_BUCKET_MODELS_PROD,
}


def register_models(env):
    """Register every {model_name}/v{N}/model.pkl of the env's bucket."""
    bucket = BUCKETS[env]
    rows = []
    for blob in gcs_list_blobs(bucket):
        parts = blob.name.split("/")
        if len(parts) != 3 or parts[2] != "model.pkl" or not parts[1].startswith("v"):
            continue
        try:
            metadata = json.loads(gcs_get(bucket, f"{parts[0]}/{parts[1]}/metadata.json"))
        except Exception:
            metadata = {}
        print(f"{blob.name} {blob.size} bytes, {blob.content_type}, generation {blob.generation}")
        rows.append(
            {
                "model_name": parts[0],
                "model_version": int(parts[1][1:]),
                "environment": env,
                "gcs_bucket": bucket,
                "file_size_bytes": blob.size,
                "upload_timestamp": blob.time_created or blob.updated,
                "uploader": (blob.metadata or {}).get("uploader", "unknown"),
                "registered_at": datetime.now(UTC),
                "metadata": json.dumps(metadata),
            }
        )
    table = f"{GCP_PROJECT_ID}.mlsys_{env}.model_registry"
    bq_put(pd.DataFrame(rows), table, write_disposition="WRITE_APPEND")
    print(f"Registered {len(rows)} models in {table}")
    return {"status": "success", "models": len(rows)}


if __name__ == "__main__":
    fire.Fire(register_models)
