"""Profiles merge exactly across shards, and drift flags the shifted features and no others."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlsys import datasets
from mlsys.demo import titanic_pipeline
from mlsys.monitoring import (
    PREDICTION,
    PROBABILITY,
    TARGET,
    FeatureProfile,
    Profile,
    Thresholds,
    compare,
    job_profile,
    merge_profiles,
    psi,
    reference_profile,
    training_profile,
)

pytestmark = pytest.mark.unit

FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]


@pytest.fixture(scope="module")
def passengers() -> pd.DataFrame:
    return datasets.titanic(20_000, seed=7)


@pytest.fixture(scope="module")
def reference(passengers) -> Profile:
    return reference_profile(pa.Table.from_pandas(passengers[FEATURES]), FEATURES)


def split(frame: pd.DataFrame, parts: int) -> list[pd.DataFrame]:
    bounds = np.linspace(0, len(frame), parts + 1).astype(int)
    return [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def profile_of(frame: pd.DataFrame, reference: Profile, parts: int) -> Profile:
    """Profile `frame` in `parts` shards of small batches, then merge."""
    kinds = {k: f.kind for k, f in reference.features.items()}
    shards = []
    for part in split(frame, parts):
        profile = job_profile(reference, kinds)
        for batch in pa.Table.from_pandas(part, preserve_index=False).to_batches(777):
            profile.update(batch)
        shards.append(profile)
    return merge_profiles(shards)


def test_merging_shards_equals_profiling_in_one_shard(passengers, reference):
    one = profile_of(passengers, reference, 1)
    seven = profile_of(passengers, reference, 7)
    # Counts merge exactly; a float sum only up to its rounding.
    totals = {k: f.total for k, f in one.features.items()}
    assert {k: f.total for k, f in seven.features.items()} == pytest.approx(totals)
    for profile in (one, seven):
        for feature in profile.features.values():
            feature.total = 0.0
    assert seven.to_json() == one.to_json()
    assert one.rows == len(passengers)
    # Counting into the training bins reproduces the training profile itself.
    assert one.features["Fare"].bins == reference.features["Fare"].bins
    assert one.features["Sex"].tracked == reference.features["Sex"].tracked


def test_high_cardinality_categories_merge_exactly_with_bounded_memory():
    values = [f"name-{i % 5000:05d}" for i in range(40_000)]
    frame = pd.DataFrame({"Name": values})
    kinds = {"Name": "category"}
    whole = job_profile(None, kinds)
    whole.update(pa.Table.from_pandas(frame))
    parts = []
    for chunk in split(frame.sample(frac=1, random_state=1), 5):
        profile = job_profile(None, kinds)
        profile.update(pa.Table.from_pandas(chunk))
        parts.append(profile)
    merged = merge_profiles(parts)
    assert merged.to_json() == whole.to_json()
    name = merged.features["Name"]
    assert len(name.others) == name.max_categories  # bounded, not 5000
    assert not name.complete
    assert name.others["name-00000"] == 8
    assert name.other_total == 40_000


def test_a_shifted_input_raises_the_shifted_features_and_no_others(passengers, reference):
    shifted = passengers.copy()
    shifted["Fare"] = shifted["Fare"] * 3 + 40
    shifted.loc[shifted.sample(frac=0.3, random_state=2).index, "Age"] = np.nan
    shifted.loc[shifted.sample(frac=0.1, random_state=3).index, "Embarked"] = "X"
    same = datasets.titanic(20_000, seed=99)  # another draw of the same population

    drifted = compare(profile_of(shifted, reference, 3), reference)
    by_name = {d.feature: d for d in drifted.features}
    assert drifted.status == "alert"
    assert by_name["Fare"].status == "alert" and "psi" in by_name["Fare"].reasons
    assert "null_rate_change" in by_name["Age"].reasons
    assert by_name["Embarked"].unseen_rate == pytest.approx(0.1, abs=0.01)
    assert by_name["Embarked"].unseen_examples == ("X",)
    flagged = {d.feature for d in drifted.features if d.status != "ok"}
    assert flagged == {"Fare", "Age", "Embarked"}
    worst = [w["feature"] for w in drifted.summary(k=3)["worst"]]
    assert set(worst) == {"Fare", "Age", "Embarked"}

    steady = compare(profile_of(same, reference, 2), reference)
    assert steady.status == "ok", [d for d in steady.features if d.status != "ok"]


def test_thresholds_are_configurable(passengers, reference):
    nudged = passengers.copy()
    nudged["Fare"] = nudged["Fare"] * 1.15
    profile = profile_of(nudged, reference, 1)
    fare = {d.feature: d for d in compare(profile, reference).features}["Fare"]
    assert 0 < fare.psi
    strict = Thresholds.from_mapping({"psi_warn": fare.psi / 2, "psi_alert": fare.psi * 2})
    assert {d.feature: d for d in compare(profile, reference, strict).features}[
        "Fare"
    ].status == "warn"
    assert Thresholds.from_mapping({"unknown": 1}) == Thresholds()


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert 0 < psi([0.5, 0.5], [0.6, 0.4]) < psi([0.5, 0.5], [0.9, 0.1])
    assert np.isfinite(psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]))


def test_without_a_reference_a_job_still_gets_counts_and_an_ok_status():
    profile = job_profile(None, {"x": "number", "c": "category"})
    profile.update(pa.table({"x": [1.0, None, 3.0], "c": ["a", None, "b"]}))
    report = compare(profile, None)
    assert report.status == "ok" and not report.has_reference
    x = {d.feature: d for d in report.features}["x"]
    assert x.null_rate == pytest.approx(1 / 3) and x.mean == 2.0 and x.psi is None


def test_training_profile_records_features_target_and_predictions(passengers):
    model = titanic_pipeline().fit(passengers[FEATURES], passengers["Survived"])
    profile = training_profile(
        model, passengers, FEATURES, "classification", passengers["Survived"]
    )
    assert set(profile.features) == {*FEATURES, PREDICTION, PROBABILITY, TARGET}
    assert profile.features[PREDICTION].kind == "category"
    assert set(profile.features[TARGET].tracked) == {"0", "1"}
    assert profile.features[PROBABILITY].kind == "number"
    restored = Profile.from_json(json.loads(json.dumps(profile.to_json())))
    assert restored.to_json() == profile.to_json()


def test_profiles_of_different_kinds_refuse_to_merge():
    with pytest.raises(ValueError):
        FeatureProfile("number").merge(FeatureProfile("category"))


def test_the_cli_closing_lines_name_the_features_that_moved(passengers, reference):
    from mlsys.prediction_stats import summary_lines

    shifted = passengers.copy()
    shifted["Fare"] = shifted["Fare"] * 3 + 40
    summary = compare(profile_of(shifted, reference, 1), reference).summary()
    lines = summary_lines(summary)
    assert lines[0].startswith("monitoring: ALERT - 1 alert")
    assert "over 7 features" in lines[0]
    # A job profiles the model's outputs too: they are not counted as features.
    job = job_profile(None, {"x": "number", PREDICTION: "category", PROBABILITY: "number"})
    job.update(pa.table({"x": [1.0], PREDICTION: ["1"], PROBABILITY: [0.7]}))
    counted = compare(job, None).summary()
    assert (counted["features"], counted["outputs"]) == (1, 2)
    assert (
        "over 1 features and the predictions"
        in summary_lines({**counted, "status": "ok", "has_reference": True})[0]
    )
    assert lines[1].split()[:2] == ["alert", "Fare:"] and "psi" in lines[1]
    assert summary_lines(None) == []
    assert "without a training profile" in summary_lines({"status": "ok"})[0]
    assert "unavailable" in summary_lines({"status": "unavailable", "error": "x"})[0]
