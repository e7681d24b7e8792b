"""The evaluation's SQL, as strings: quoted names, UTC literals, numpy's calibration edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from mlsys.evaluation import sql
from mlsys.ids import TableId

pytestmark = pytest.mark.unit

JOIN = sql.JoinSpec(
    output=TableId("mlsys-local", "titanic", "predictions"),
    labels=TableId("mlsys-local", "titanic", "outcomes"),
    keys=("PassengerId", "Ticket"),
    prediction="Survived",
    label="Outcome",
    since=datetime(2026, 3, 1, tzinfo=UTC),
    until=datetime(2026, 3, 8, tzinfo=UTC),
    has_probability=True,
    model_name="titanic-survival",
    model_version="v2",
)


def test_timestamps_are_utc_literals_whatever_zone_they_came_in():
    paris = datetime(2026, 3, 1, 7, 30, tzinfo=timezone(timedelta(hours=1)))

    assert sql.timestamp_literal(paris) == "TIMESTAMP '2026-03-01 06:30:00.000000+00'"
    assert (
        sql.timestamp_literal(datetime(2026, 3, 1)) == "TIMESTAMP '2026-03-01 00:00:00.000000+00'"
    )


def test_the_join_names_every_column_quoted_and_filters_the_window_and_version():
    text = sql.class_counts(JOIN)

    assert "LEFT JOIN `mlsys-local.titanic.outcomes` AS l" in text
    assert "o.`PassengerId` = l.`PassengerId` AND o.`Ticket` = l.`Ticket`" in text
    assert "o.`Survived` AS predicted" in text and "l.`Outcome` AS label" in text
    assert "o.`PredictionTimestamp` >= TIMESTAMP '2026-03-01 00:00:00.000000+00'" in text
    assert 'o.`ModelName` = "titanic-survival" AND o.`ModelVersion` = "v2"' in text
    assert "DIV(UNIX_SECONDS(o.`PredictionTimestamp`), 86400) AS day" in text


def test_calibration_bins_use_numpys_edges():
    expression = sql.calibration_bin("score")
    edges = [float(e) for e in np.linspace(0, 1, sql.CALIBRATION_BINS + 1)[1:-1]]

    assert [f"IF(score > {e!r}, 1, 0)" for e in edges] == expression.split(" + ")


def test_a_binary_model_scores_its_positive_class_only():
    binary = sql.probability_sums(JOIN, ["0", "1"], positive="1")
    multiclass = sql.probability_sums(JOIN, ["a", "b", "c"], positive=None)

    assert 'UNNEST(["1"]) AS cls' in binary and "(1 - probability) / 1" in binary
    assert 'UNNEST(["a", "b", "c"]) AS cls' in multiclass and "(1 - probability) / 2" in multiclass
