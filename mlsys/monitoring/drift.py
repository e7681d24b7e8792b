"""Drift between a training profile and a job's.

Drift compares a job's profile with the training one: PSI per feature over the training bins,
the change of null rate, and the share of values never seen in training; each is graded
ok / warn / alert against configurable thresholds, and the job's overall status is the worst.
Pure: plain profiles in, a report out (`compare`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from mlsys.monitoring.profiles import OUTPUTS, FeatureProfile, Profile

Status = Literal["ok", "warn", "alert"]
STATUS_ORDER: dict[str, int] = {"ok": 0, "warn": 1, "alert": 2}

_PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class Thresholds:
    """When a metric turns a feature to warn or alert. PSI: 0.1 / 0.25 is the usual reading
    (a small, then a significant shift); rates are absolute shares of rows."""

    psi_warn: float = 0.1
    psi_alert: float = 0.25
    null_warn: float = 0.05
    null_alert: float = 0.2
    unseen_warn: float = 0.01
    unseen_alert: float = 0.05

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Thresholds:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: float(v) for k, v in (data or {}).items() if k in known})


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index between two share vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype=np.float64), _PSI_FLOOR, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), _PSI_FLOOR, None)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str
    status: Status
    rows: int
    null_rate: float
    psi: float | None = None
    null_rate_reference: float | None = None
    null_rate_change: float | None = None
    unseen_rate: float | None = None
    unseen_examples: tuple[str, ...] = ()
    mean: float | None = None
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["unseen_examples"] = list(self.unseen_examples)
        data["reasons"] = list(self.reasons)
        return data


def _grade(value: float | None, warn: float, alert: float) -> Status:
    if value is None or math.isnan(value):
        return "ok"
    return "alert" if value >= alert else "warn" if value >= warn else "ok"


def feature_drift(
    name: str, actual: FeatureProfile, reference: FeatureProfile | None, thresholds: Thresholds
) -> FeatureDrift:
    rounded = _round
    if reference is None or not actual.count:
        return FeatureDrift(
            name, actual.kind, "ok", actual.count, rounded(actual.null_rate), mean=actual.mean
        )
    value = None
    expected, observed = reference.shares(), actual.shares()
    if expected is not None and observed is not None and len(expected) == len(observed):
        value = psi(expected, observed)
    change = abs(actual.null_rate - reference.null_rate)
    unseen_rate, examples = None, ()
    if actual.kind == "category" and reference.complete and actual.non_null:
        unseen_rate = actual.other_total / actual.count
        examples = tuple(sorted(actual.others or {})[:5])
    grades = {
        "psi": _grade(value, thresholds.psi_warn, thresholds.psi_alert),
        "null_rate_change": _grade(change, thresholds.null_warn, thresholds.null_alert),
        "unseen_rate": _grade(unseen_rate, thresholds.unseen_warn, thresholds.unseen_alert),
    }
    status = worst(grades.values())
    return FeatureDrift(
        feature=name,
        kind=actual.kind,
        status=status,
        rows=actual.count,
        null_rate=rounded(actual.null_rate),
        psi=rounded(value),
        null_rate_reference=rounded(reference.null_rate),
        null_rate_change=rounded(change),
        unseen_rate=rounded(unseen_rate),
        unseen_examples=examples,
        mean=rounded(actual.mean),
        reasons=tuple(k for k, g in grades.items() if g != "ok"),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def worst(statuses: Iterable[str]) -> Status:
    return max(statuses, key=lambda s: STATUS_ORDER[s], default="ok")  # type: ignore[return-value]


@dataclass(frozen=True)
class DriftReport:
    status: Status
    features: list[FeatureDrift]
    has_reference: bool

    def worst_features(self, k: int = 3) -> list[FeatureDrift]:
        ranked = sorted(
            self.features,
            key=lambda d: (-STATUS_ORDER[d.status], -(d.psi or 0.0), d.feature),
        )
        return ranked[:k]

    def summary(self, k: int = 3) -> dict[str, Any]:
        """What a job record shows: the overall status and the worst few features. `features`
        counts the model's input features; `outputs` the profiles of what it predicted."""
        outputs = sum(d.feature in OUTPUTS for d in self.features)
        return {
            "status": self.status,
            "has_reference": self.has_reference,
            "features": len(self.features) - outputs,
            "outputs": outputs,
            "warn": sum(d.status == "warn" for d in self.features),
            "alert": sum(d.status == "alert" for d in self.features),
            "worst": [
                {
                    "feature": d.feature,
                    "status": d.status,
                    "psi": d.psi,
                    "null_rate_change": d.null_rate_change,
                    "unseen_rate": d.unseen_rate,
                    "reasons": list(d.reasons),
                }
                for d in self.worst_features(k)
            ],
        }


def compare(
    actual: Profile, reference: Profile | None, thresholds: Thresholds | None = None
) -> DriftReport:
    """Grade every entry of a job's profile against the training profile."""
    thresholds = thresholds or Thresholds()
    drifts = [
        feature_drift(
            name, profile, reference.features.get(name) if reference else None, thresholds
        )
        for name, profile in actual.features.items()
    ]
    return DriftReport(worst(d.status for d in drifts), drifts, reference is not None)
