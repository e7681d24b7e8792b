"""Profiles of model inputs and outputs: a training profile, and a job's built as it streams.

Pure: no warehouse, no Redis. A profile is built from a frame (training) or from record batches
(a job, while it streams), per shard, and profiles of shards merge into the profile of the whole
input: every statistic is a count or a sum over fixed bins, so the merge is exact and memory is
bounded by the number of bins, never by the number of rows.

- Numbers: quantile-bin edges fixed by the training data; a job counts its values into the
  same bins, plus nulls (NaN counts as null), min, max and sum.
- Categories (strings, booleans): the training profile keeps the `max_categories` most frequent
  values, and whether that is all of them; a job counts those values exactly and keeps the
  lexicographically smallest `max_categories` other values with exact counts (the smallest-N
  set of a union is the smallest-N of the parts' smallest-N sets, so it merges exactly).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Kind = Literal["number", "category"]

#: Profile entries for the model's output, next to the features.
PREDICTION = "__prediction__"
PROBABILITY = "__probability__"
TARGET = "__target__"
#: Profiles of the model's outputs, beside those of its input features.
OUTPUTS = frozenset({PREDICTION, PROBABILITY})

DEFAULT_BINS = 10
DEFAULT_MAX_CATEGORIES = 50
PROFILE_VERSION = 1
# PSI takes a log of each bin's share; an empty bin would make it infinite.


@dataclass
class FeatureProfile:
    """Mergeable statistics of one column."""

    kind: Kind
    count: int = 0
    nulls: int = 0
    # numbers
    edges: list[float] | None = None  # inner cut points; bins are (-inf, e0), [e0, e1), ...
    bins: list[int] | None = None  # len(edges) + 1 counts
    minimum: float | None = None
    maximum: float | None = None
    total: float = 0.0
    # categories
    tracked: dict[str, int] | None = None  # values named by the reference, exact counts
    others: dict[str, int] | None = None  # smallest other values, exact counts
    other_total: int = 0  # all non-null values not in `tracked`
    complete: bool = True  # `tracked` + `others` name every value seen
    max_categories: int = DEFAULT_MAX_CATEGORIES

    @property
    def non_null(self) -> int:
        return self.count - self.nulls

    @property
    def null_rate(self) -> float:
        return self.nulls / self.count if self.count else 0.0

    @property
    def mean(self) -> float | None:
        return self.total / self.non_null if self.non_null and self.kind == "number" else None

    def empty_like(self) -> FeatureProfile:
        """A zero profile with the same bins (what a shard starts from)."""
        if self.kind == "number":
            return FeatureProfile(
                "number",
                edges=list(self.edges) if self.edges is not None else None,
                bins=[0] * len(self.bins) if self.bins is not None else None,
            )
        return FeatureProfile(
            "category",
            tracked=dict.fromkeys(self.tracked or {}, 0),
            others={},
            max_categories=self.max_categories,
        )

    # --- update ---------------------------------------------------------------------------
    def update(self, column: pa.Array | pa.ChunkedArray) -> None:
        if self.kind == "number":
            self._update_number(column)
        else:
            self._update_category(column)

    def _update_number(self, column: pa.Array | pa.ChunkedArray) -> None:
        if pa.types.is_boolean(column.type) or pa.types.is_decimal(column.type):
            column = pc.cast(column, pa.float64())
        values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
        valid = values[~np.isnan(values)]
        self.count += len(values)
        self.nulls += len(values) - len(valid)
        if not len(valid):
            return
        self.total += float(valid.sum())
        low, high = float(valid.min()), float(valid.max())
        self.minimum = low if self.minimum is None else min(self.minimum, low)
        self.maximum = high if self.maximum is None else max(self.maximum, high)
        if self.edges is not None and self.bins is not None:
            counts = bin_counts(valid, self.edges)
            self.bins = [a + b for a, b in zip(self.bins, counts, strict=True)]

    def _update_category(self, column: pa.Array | pa.ChunkedArray) -> None:
        self.count += len(column)
        self.nulls += column.null_count
        if self.tracked is None:
            self.tracked = {}
        if self.others is None:
            self.others = {}
        counts = pc.value_counts(column.drop_null() if column.null_count else column)
        if not len(counts):
            return
        values, numbers = counts.field("values"), counts.field("counts")
        if not pa.types.is_string(values.type):
            # Categories are compared as text; cast the few distinct values, not the column.
            values = pc.cast(values, pa.string())
        known = pc.is_in(values, value_set=pa.array(list(self.tracked), pa.string()))
        for value, n in zip(
            pc.filter(values, known).to_pylist(), pc.filter(numbers, known).to_pylist(), strict=True
        ):
            self.tracked[value] += n
        unknown = pc.invert(known)
        other_values, other_counts = pc.filter(values, unknown), pc.filter(numbers, unknown)
        self.other_total += int(pc.sum(other_counts).as_py() or 0)
        if len(other_values) > self.max_categories:
            # Only the smallest values can make the cut: sort out the rest in Arrow.
            order = pc.select_k_unstable(
                pa.table({"v": other_values}), self.max_categories, [("v", "ascending")]
            )
            other_values, other_counts = other_values.take(order), other_counts.take(order)
            self.complete = False
        for value, n in zip(other_values.to_pylist(), other_counts.to_pylist(), strict=True):
            self.others[value] = self.others.get(value, 0) + n
        self._trim()

    def _trim(self) -> None:
        assert self.others is not None
        if len(self.others) > self.max_categories:
            keep = sorted(self.others)[: self.max_categories]
            self.others = {k: self.others[k] for k in keep}
            self.complete = False

    # --- merge ----------------------------------------------------------------------------
    def merge(self, other: FeatureProfile) -> FeatureProfile:
        """The profile of both inputs together (profiles of the same reference)."""
        if other.kind != self.kind:
            raise ValueError(f"cannot merge a {other.kind} profile into a {self.kind} one")
        merged = FeatureProfile(
            self.kind,
            count=self.count + other.count,
            nulls=self.nulls + other.nulls,
            max_categories=self.max_categories,
        )
        if self.kind == "number":
            if self.edges != other.edges:
                raise ValueError("cannot merge number profiles with different bin edges")
            merged.edges = self.edges
            if self.bins is not None and other.bins is not None:
                merged.bins = [a + b for a, b in zip(self.bins, other.bins, strict=True)]
            merged.total = self.total + other.total
            lows = [v for v in (self.minimum, other.minimum) if v is not None]
            highs = [v for v in (self.maximum, other.maximum) if v is not None]
            merged.minimum = min(lows) if lows else None
            merged.maximum = max(highs) if highs else None
            return merged
        tracked = dict(self.tracked or {})
        for key, n in (other.tracked or {}).items():
            tracked[key] = tracked.get(key, 0) + n
        others = dict(self.others or {})
        for key, n in (other.others or {}).items():
            others[key] = others.get(key, 0) + n
        merged.tracked, merged.others = tracked, others
        merged.other_total = self.other_total + other.other_total
        merged.complete = self.complete and other.complete
        merged._trim()
        return merged

    # --- shares ---------------------------------------------------------------------------
    def shares(self) -> list[float] | None:
        """Share of non-null values per bin (numbers) or per tracked value + `other`."""
        if not self.non_null:
            return None
        if self.kind == "number":
            return [b / self.non_null for b in self.bins] if self.bins is not None else None
        tracked = [self.tracked[k] for k in sorted(self.tracked or {})]
        return [n / self.non_null for n in tracked] + [self.other_total / self.non_null]

    def top(self, k: int = 10) -> list[tuple[str, int]]:
        """Most frequent category values known to this profile."""
        pool = {**(self.others or {}), **(self.tracked or {})}
        return sorted(pool.items(), key=lambda kv: (-kv[1], kv[0]))[:k]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.kind == "number":
            for key in ("tracked", "others", "other_total", "complete", "max_categories"):
                data.pop(key)
        else:
            for key in ("edges", "bins", "minimum", "maximum", "total"):
                data.pop(key)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureProfile:
        return cls(**data)


def bin_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts of `values` per bin (-inf, e0), [e0, e1), ..., [e_last, inf).

    One vectorised comparison per edge: with the handful of edges a profile has, faster than
    a binary search per value."""
    above = [int(np.count_nonzero(values >= edge)) for edge in edges]  # non-increasing
    if not above:
        return [len(values)]
    return (
        [len(values) - above[0]]
        + [a - b for a, b in zip(above[:-1], above[1:], strict=True)]
        + [above[-1]]
    )


def kind_of(data_type: pa.DataType) -> Kind:
    """Numbers are profiled in bins, everything else as categories."""
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type):
        return "number"
    if pa.types.is_decimal(data_type):
        return "number"
    return "category"


@dataclass
class Profile:
    """Profiles of a table's columns (features, and the model's output entries)."""

    features: dict[str, FeatureProfile] = field(default_factory=dict)
    rows: int = 0

    def empty_like(self) -> Profile:
        return Profile({k: f.empty_like() for k, f in self.features.items()})

    def update(self, batch: pa.RecordBatch | pa.Table, names: Mapping[str, str] | None = None):
        """Add a batch. `names` maps profile entries to batch columns (default: same name);
        entries without a column in the batch are left alone."""
        self.rows += batch.num_rows
        for key, profile in self.features.items():
            column = (names or {}).get(key, key)
            if column in batch.schema.names:
                profile.update(batch.column(column))

    def merge(self, other: Profile) -> Profile:
        keys = list(dict.fromkeys([*self.features, *other.features]))
        merged = Profile(rows=self.rows + other.rows)
        for key in keys:
            mine, theirs = self.features.get(key), other.features.get(key)
            if mine is None or theirs is None:
                merged.features[key] = mine or theirs  # type: ignore[assignment]
            else:
                merged.features[key] = mine.merge(theirs)
        return merged

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PROFILE_VERSION,
            "rows": self.rows,
            "features": {k: f.to_json() for k, f in self.features.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        return cls(
            features={k: FeatureProfile.from_json(v) for k, v in data["features"].items()},
            rows=int(data.get("rows", 0)),
        )


def _output_array(values: Any, task: str) -> pa.Array:
    """Classes are categories (even when they are numbers); regression outputs are numbers."""
    if task == "classification":
        return pc.cast(pa.array(np.asarray(values).tolist()), pa.string())
    return pa.array(np.asarray(values, dtype=np.float64))


def merge_profiles(profiles: Iterable[Profile]) -> Profile:
    merged = Profile()
    for profile in profiles:
        merged = merged.merge(profile)
    return merged


# --- reference profiles (training) ------------------------------------------------------------
def reference_feature(
    column: pa.Array | pa.ChunkedArray,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> FeatureProfile:
    """The training profile of one column: quantile edges or the most frequent values."""
    kind = kind_of(column.type)
    if kind == "number":
        values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
        valid = values[~np.isnan(values)]
        edges: list[float] = []
        if len(valid):
            quantiles = np.quantile(valid, np.linspace(0, 1, bins + 1)[1:-1])
            edges = [float(e) for e in np.unique(quantiles)]
        profile = FeatureProfile("number", edges=edges, bins=[0] * (len(edges) + 1))
        profile.update(column)
        return profile
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    counts = pc.value_counts(column.drop_null())
    pairs = sorted(
        zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True),
        key=lambda kv: (-kv[1], kv[0]),
    )
    kept = dict(pairs[:max_categories])
    profile = FeatureProfile("category", tracked=dict.fromkeys(kept, 0), others={})
    profile.max_categories = max_categories
    profile.update(column)
    profile.complete = len(pairs) <= max_categories
    return profile


def reference_profile(
    table: pa.Table,
    columns: Iterable[str] | None = None,
    *,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> Profile:
    """Profile a whole (training) table; its bins are the ones every job counts into."""
    names = list(columns) if columns is not None else table.schema.names
    return Profile(
        features={
            name: reference_feature(table.column(name), bins, max_categories) for name in names
        },
        rows=table.num_rows,
    )


def training_profile(
    model: Any,
    frame: Any,
    features: list[str],
    task: str,
    target: Any = None,
    *,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> Profile:
    """The reference a model is saved with: its features on the training frame, the target,
    and what the model itself predicts there (label and, for classifiers, its probability).

    Args:
        frame: a pandas DataFrame with at least `features`.
        target: the training labels (optional).
    """
    inputs = frame[features]
    table = pa.Table.from_pandas(inputs, preserve_index=False)
    profile = reference_profile(table, features, bins=bins, max_categories=max_categories)
    if task == "classification" and hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(inputs))
        labels = np.asarray(model.classes_)[proba.argmax(axis=1)]
        profile.features[PROBABILITY] = reference_feature(pa.array(proba.max(axis=1)), bins)
    else:
        labels = np.asarray(model.predict(inputs))
    profile.features[PREDICTION] = reference_feature(
        _output_array(labels, task), bins, max_categories
    )
    if target is not None:
        profile.features[TARGET] = reference_feature(
            _output_array(target, task), bins, max_categories
        )
    return profile


def job_profile(reference: Profile | None, kinds: Mapping[str, Kind]) -> Profile:
    """An empty profile for a job: the reference's bins, or bare counts for an entry the
    reference does not know (older models have no reference at all).

    Args:
        kinds: profile entry -> its kind, from the job's own schema.
    """
    features: dict[str, FeatureProfile] = {}
    for key, kind in kinds.items():
        known = reference.features.get(key) if reference is not None else None
        features[key] = known.empty_like() if known is not None else FeatureProfile(kind)
    return Profile(features)
