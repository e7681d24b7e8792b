"""Monitoring: profiles of a model's inputs and outputs, drift, and the stats kept per job.

Owns what is measured and how it is graded:
- `profiles`: training and job profiles (`Profile`, exact merges over fixed bins);
- `drift`: PSI, null-rate and unseen-value drift per feature, graded (`compare`, `Thresholds`);
- `stats`: a job's profile per shard while it streams, the merged stats row per feature and
  job in `mlsys_{env}.prediction_stats`, and reading them back.
"""

from mlsys.monitoring.drift import (
    DriftReport,
    FeatureDrift,
    Thresholds,
    compare,
    feature_drift,
    psi,
)
from mlsys.monitoring.profiles import (
    PREDICTION,
    PROBABILITY,
    TARGET,
    FeatureProfile,
    Profile,
    job_profile,
    merge_profiles,
    reference_feature,
    reference_profile,
    training_profile,
)

__all__ = [
    "PREDICTION",
    "PROBABILITY",
    "TARGET",
    "DriftReport",
    "FeatureDrift",
    "FeatureProfile",
    "Profile",
    "Thresholds",
    "compare",
    "feature_drift",
    "job_profile",
    "merge_profiles",
    "psi",
    "reference_feature",
    "reference_profile",
    "training_profile",
]
