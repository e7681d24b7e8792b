"""Model artifacts: how a fitted model is saved, verified, loaded and asked for predictions.

Owns the layout of a model in the model store and what a model can tell about itself:
- `artifacts`: `save_model`, the artifact path and metadata, hashing and verified loading;
- `labels`: a model's task and classes, and turning its raw output into typed predictions;
- `cache`: loaded models kept per process, keyed by the artifact's hash.
"""

from mlsys.models.artifacts import (
    MODEL_CACHE,
    SavedModel,
    artifact_path,
    load_verified,
    save_model,
)
from mlsys.models.cache import ModelCache

__all__ = [
    "MODEL_CACHE",
    "ModelCache",
    "SavedModel",
    "artifact_path",
    "load_verified",
    "save_model",
]
