"""The SQL of an evaluation, built by pure functions (BigQuery dialect; the embedded warehouse
transpiles it). Every query joins the output table with the labels table in the warehouse and
returns small aggregates per model name, version and day: counts per (label, prediction) pair,
probability sums per class and calibration bin, score counts for the AUC, regression sums.

Days are whole UTC days since the epoch (`DIV(UNIX_SECONDS(ts), 86400)`): no time zone setting
of either backend can move a row to another day.

Probabilities. mlsys' output keeps `PredictionProbability`, the probability of the *predicted*
class. The probability of class k is therefore known exactly when k was predicted, and for a
binary model also when it was not (1 - p). For more classes the mass left, 1 - p, is spread
evenly over the classes not predicted (the least-informed completion): the probability metrics
of a multiclass model equal scikit-learn's on that completed matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from mlsys.ids import TableId
from mlsys.warehouse.bq_sql import col, string_literal, table_ref

PROBABILITY = "PredictionProbability"
TIMESTAMP = "PredictionTimestamp"
MODEL_NAME = "ModelName"
MODEL_VERSION = "ModelVersion"
#: scikit-learn clips probabilities to [eps, 1 - eps] (float64) before the log of log loss.
EPS = 2.220446049250313e-16
#: Equal-width calibration bins, as `sklearn.calibration.calibration_curve(n_bins=10)`.
CALIBRATION_BINS = 10
#: Residual quantiles reported for regression (from APPROX_QUANTILES(residual, 20)).
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_QUANTILE_PARTS = 20
SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class JoinSpec:
    """What one evaluation reads: validated tables and columns, a window of prediction times.

    `until` is the end the rows may reach (already moved back by the label delay)."""

    output: TableId
    labels: TableId
    keys: tuple[str, ...]
    prediction: str
    label: str
    since: datetime
    until: datetime
    has_probability: bool = False
    model_name: str | None = None
    model_version: str | None = None


def timestamp_literal(moment: datetime) -> str:
    """A TIMESTAMP literal in UTC (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"TIMESTAMP '{text}+00'"


def _labelled(spec: JoinSpec) -> str:
    """One row per prediction in the window, with its label (NULL when none is known)."""
    on = " AND ".join(f"o.{col(k)} = l.{col(k)}" for k in spec.keys)
    probability = f"o.{col(PROBABILITY)}" if spec.has_probability else "CAST(NULL AS FLOAT64)"
    where = [
        f"o.{col(TIMESTAMP)} >= {timestamp_literal(spec.since)}",
        f"o.{col(TIMESTAMP)} < {timestamp_literal(spec.until)}",
    ]
    if spec.model_name is not None:
        where.append(f"o.{col(MODEL_NAME)} = {string_literal(spec.model_name)}")
    if spec.model_version is not None:
        where.append(f"o.{col(MODEL_VERSION)} = {string_literal(spec.model_version)}")
    return (
        "labelled AS (SELECT "
        f"o.{col(MODEL_NAME)} AS model_name, o.{col(MODEL_VERSION)} AS model_version, "
        f"DIV(UNIX_SECONDS(o.{col(TIMESTAMP)}), {SECONDS_PER_DAY}) AS day, "
        f"o.{col(spec.prediction)} AS predicted, {probability} AS probability, "
        f"l.{col(spec.label)} AS label "
        f"FROM {table_ref(spec.output)} AS o LEFT JOIN {table_ref(spec.labels)} AS l ON {on} "
        f"WHERE {' AND '.join(where)})"
    )


_GROUP = "model_name, model_version, day"


def class_counts(spec: JoinSpec) -> str:
    """Rows per (group, label, prediction): the confusion matrices, and the unmatched rows
    (label NULL). Classes come back both as values and as text (how later queries name them)."""
    return (
        f"WITH {_labelled(spec)} "
        f"SELECT {_GROUP}, label, predicted, CAST(label AS STRING) AS label_text, "
        "CAST(predicted AS STRING) AS predicted_text, COUNT(*) AS n "
        f"FROM labelled GROUP BY {_GROUP}, label, predicted"
    )


def _scored(spec: JoinSpec, classes: Sequence[str], scored_classes: Sequence[str]) -> str:
    """One row per (matched prediction, scored class): the probability of that class and
    whether it is the label. `classes` are all classes (as text), `scored_classes` those
    scored (a binary model scores its positive class only)."""
    others = max(len(classes) - 1, 1)
    listed = ", ".join(string_literal(c) for c in scored_classes)
    return (
        "scored AS (SELECT model_name, model_version, day, cls, "
        f"IF(CAST(predicted AS STRING) = cls, probability, (1 - probability) / {others}) "
        "AS score, IF(CAST(label AS STRING) = cls, 1, 0) AS positive "
        f"FROM labelled CROSS JOIN UNNEST([{listed}]) AS cls "
        "WHERE label IS NOT NULL AND probability IS NOT NULL AND predicted IS NOT NULL)"
    )


def calibration_bin(score: str) -> str:
    """Bin index of `score`: how many inner edges lie strictly below it (numpy's
    `searchsorted(edges, score, side="left")`, as calibration_curve bins)."""
    # i * step, as numpy.linspace computes its edges (3 * 0.1 is 0.30000000000000004).
    edges = [i * (1.0 / CALIBRATION_BINS) for i in range(1, CALIBRATION_BINS)]
    return " + ".join(f"IF({score} > {edge!r}, 1, 0)" for edge in edges)


def probability_sums(spec: JoinSpec, classes: Sequence[str], positive: str | None) -> str:
    """Per (group, scored class, calibration bin): rows, sum of scores, positives, and the
    sums of log loss and squared error. Binary models (`positive` given) score the positive
    class only; their log loss takes 1 - score for negative rows."""
    scored_classes = [positive] if positive is not None else list(classes)
    clip = f"GREATEST(LEAST({{}}, {1 - EPS!r}), {EPS!r})"
    if positive is not None:
        true_probability = "IF(positive = 1, score, 1 - score)"
        log_loss = f"-LN({clip.format(true_probability)})"
    else:
        log_loss = f"IF(positive = 1, -LN({clip.format('score')}), 0)"
    return (
        f"WITH {_labelled(spec)}, {_scored(spec, classes, scored_classes)} "
        f"SELECT {_GROUP}, cls, {calibration_bin('score')} AS bin, COUNT(*) AS n, "
        "SUM(score) AS score_sum, SUM(positive) AS positives, "
        f"SUM({log_loss}) AS log_loss_sum, SUM(POW(score - positive, 2)) AS brier_sum "
        f"FROM scored GROUP BY {_GROUP}, cls, bin"
    )


def rank_sums(spec: JoinSpec, classes: Sequence[str], positive: str | None) -> str:
    """Exact one-vs-rest ROC AUC terms per (group, class), for each day and for the whole
    window (day NULL), from ranks computed in the warehouse.

    AUC is the Mann-Whitney statistic: over positive rows, the negatives scored below plus half
    those scored equal (how scikit-learn's trapezoids treat ties), divided by P * N. Rows are
    first counted per distinct score, so the running sum runs over distinct scores only; twice
    the numerator, `2 * below + equal`, stays an exact integer."""
    scored_classes = [positive] if positive is not None else list(classes)
    return (
        f"WITH {_labelled(spec)}, {_scored(spec, classes, scored_classes)}, "
        "per_day AS (SELECT model_name, model_version, day, cls, score, "
        "SUM(positive) AS pos, COUNT(*) - SUM(positive) AS neg "
        f"FROM scored GROUP BY {_GROUP}, cls, score), "
        "per_score AS (SELECT * FROM per_day UNION ALL "
        "SELECT model_name, model_version, CAST(NULL AS INT64) AS day, cls, score, "
        "SUM(pos) AS pos, SUM(neg) AS neg FROM per_day "
        "GROUP BY model_name, model_version, cls, score), "
        "ranked AS (SELECT model_name, model_version, day, cls, pos, neg, "
        "SUM(neg) OVER (PARTITION BY model_name, model_version, day, cls "
        "ORDER BY score ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - neg AS below "
        "FROM per_score) "
        f"SELECT {_GROUP}, cls, SUM(pos * (2 * below + neg)) AS twice_u, "
        "SUM(pos) AS positives, SUM(neg) AS negatives "
        f"FROM ranked GROUP BY {_GROUP}, cls"
    )


def regression_sums(spec: JoinSpec) -> str:
    """Per group, for each day and for the whole window (day NULL): rows, matched rows, sums of
    absolute and squared residuals (label - prediction), the labels' mean and centred sum of
    squares, the MAPE terms over non-zero labels, and residual quantiles."""
    residual = "(label - predicted)"
    aggregates = (
        "COUNT(*) AS n, COUNTIF(label IS NOT NULL AND predicted IS NOT NULL) AS matched, "
        f"SUM(ABS({residual})) AS abs_sum, SUM(POW({residual}, 2)) AS sq_sum, "
        f"SUM({residual}) AS residual_sum, "
        "AVG(IF(predicted IS NOT NULL, label, NULL)) AS label_mean, "
        "VAR_POP(IF(predicted IS NOT NULL, label, NULL)) AS label_var, "
        f"SUM(IF(label != 0, ABS({residual} / label), 0)) AS ape_sum, "
        "COUNTIF(label != 0 AND predicted IS NOT NULL) AS ape_n, "
        f"APPROX_QUANTILES({residual}, {_QUANTILE_PARTS}) AS residual_quantiles"
    )
    return (
        f"WITH {_labelled(spec)} "
        f"SELECT {_GROUP}, {aggregates} FROM labelled GROUP BY {_GROUP} "
        "UNION ALL "
        f"SELECT model_name, model_version, CAST(NULL AS INT64) AS day, {aggregates} "
        "FROM labelled GROUP BY model_name, model_version"
    )


def quantile_positions() -> list[int]:
    """Indexes of QUANTILES in the APPROX_QUANTILES array (of _QUANTILE_PARTS + 1 values)."""
    return [round(q * _QUANTILE_PARTS) for q in QUANTILES]


def duplicate_keys(labels: TableId, keys: Sequence[str]) -> str:
    """How many key values appear more than once in the labels table, with one example."""
    listed = ", ".join(col(k) for k in keys)
    return (
        f"SELECT {listed}, copies, COUNT(*) OVER () AS duplicated FROM "
        f"(SELECT {listed}, COUNT(*) AS copies FROM {table_ref(labels)} "
        f"GROUP BY {listed} HAVING COUNT(*) > 1) AS d ORDER BY copies DESC LIMIT 1"
    )


def window_overlap(spec: JoinSpec) -> str:
    """Whether the window holds a prediction, and a labelled one (1 or 0 each: both stop at
    the first row found)."""
    labelled = _labelled(spec)
    return (
        f"WITH {labelled} SELECT "
        "(SELECT COUNT(*) FROM (SELECT 1 FROM labelled LIMIT 1) AS a) AS predictions, "
        "(SELECT COUNT(*) FROM (SELECT 1 FROM labelled WHERE label IS NOT NULL LIMIT 1) AS b) "
        "AS matched"
    )


def paired_counts(spec: JoinSpec, champion: str, challenger: str, regression: bool) -> str:
    """Rows that two versions of `spec.model_name` scored on the same keys and day, with a
    label: how many both got right, and each alone. A regression prediction is "right" where
    its absolute error is the smaller of the two (ties: neither)."""
    keys = [f"k{i}" for i in range(len(spec.keys))]
    on = " AND ".join(f"o.{col(k)} = l.{col(k)}" for k in spec.keys)
    where = [
        f"o.{col(TIMESTAMP)} >= {timestamp_literal(spec.since)}",
        f"o.{col(TIMESTAMP)} < {timestamp_literal(spec.until)}",
        f"o.{col(MODEL_NAME)} = {string_literal(spec.model_name or '')}",
        f"o.{col(MODEL_VERSION)} IN ({string_literal(champion)}, {string_literal(challenger)})",
        f"o.{col(spec.prediction)} IS NOT NULL",
        f"l.{col(spec.label)} IS NOT NULL",
    ]
    selected = ", ".join(f"o.{col(k)} AS {alias}" for k, alias in zip(spec.keys, keys, strict=True))
    pair_on = " AND ".join(f"a.{k} = b.{k}" for k in [*keys, "day"])
    if regression:
        a_right = "ABS(a.label - a.predicted) < ABS(b.label - b.predicted)"
        b_right = "ABS(b.label - b.predicted) < ABS(a.label - a.predicted)"
    else:
        a_right, b_right = "a.predicted = a.label", "b.predicted = b.label"
    return (
        f"WITH base AS (SELECT {selected}, o.{col(MODEL_VERSION)} AS model_version, "
        f"DIV(UNIX_SECONDS(o.{col(TIMESTAMP)}), {SECONDS_PER_DAY}) AS day, "
        f"o.{col(spec.prediction)} AS predicted, l.{col(spec.label)} AS label "
        f"FROM {table_ref(spec.output)} AS o JOIN {table_ref(spec.labels)} AS l ON {on} "
        f"WHERE {' AND '.join(where)}), "
        f"pairs AS (SELECT {a_right} AS a_right, {b_right} AS b_right "
        f"FROM base AS a JOIN base AS b ON {pair_on} "
        f"WHERE a.model_version = {string_literal(champion)} "
        f"AND b.model_version = {string_literal(challenger)}) "
        "SELECT COUNT(*) AS n, COUNTIF(a_right AND b_right) AS both_right, "
        "COUNTIF(a_right AND NOT b_right) AS champion_only, "
        "COUNTIF(b_right AND NOT a_right) AS challenger_only FROM pairs"
    )
