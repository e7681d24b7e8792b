"""Prediction pipeline, written the way the seed project's scripts/predict.py is: a Fire CLI
over the notebook helpers (bq_get, gcs_get_pickle, bq_put). Tests run it unchanged on mlsys."""

import json

import fire
import pandas as pd

from mlsys.bq import bq_get, bq_put
from mlsys.gcs import gcs_get, gcs_get_pickle
from mlsys.settings import GCS_BUCKET_MODELS_DEV, GCS_BUCKET_MODELS_PROD, GCS_BUCKET_MODELS_STAGING

BUCKETS = {
    "dev": GCS_BUCKET_MODELS_DEV,
    "staging": GCS_BUCKET_MODELS_STAGING,
    "prod": GCS_BUCKET_MODELS_PROD,
}


def predict(env, input_table, output_table, model_name, model_version):
    """Pull the input table, predict with the model from GCS, append the predictions."""
    bucket = BUCKETS[env]
    df = bq_get(f"SELECT * FROM `{input_table}`")
    model = gcs_get_pickle(bucket, f"{model_name}/{model_version}/model.pkl")
    metadata = json.loads(gcs_get(bucket, f"{model_name}/{model_version}/metadata.json"))
    X = df[metadata["features"]]
    predictions = pd.DataFrame(
        {
            "PassengerId": df["PassengerId"],
            "Survived": model.predict(X),
            "PredictionProbability": model.predict_proba(X)[:, 1],
        }
    )
    predictions["PredictionTimestamp"] = pd.Timestamp.now(tz="UTC")
    predictions["ModelName"] = model_name
    predictions["ModelVersion"] = model_version
    bq_put(predictions, output_table, write_disposition="WRITE_APPEND")
    print(f"Wrote {len(predictions)} predictions to {output_table}")
    return {"status": "success", "rows": len(predictions)}


if __name__ == "__main__":
    fire.Fire(predict)
