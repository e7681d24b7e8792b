"""An evaluation request, parsed once: tables, columns, window and delay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlsys.errors import InvalidIdentifier, InvalidRequest, ProtectedTable
from mlsys.evaluation.spec import EvaluateSpec, parse_delay

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def _spec(settings, **extra) -> EvaluateSpec:
    return EvaluateSpec.parse(
        env="dev",
        output_table="mlsys-local.titanic.predictions",
        labels_table="mlsys-local.titanic.outcomes",
        settings=settings,
        **extra,
    )


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, 0), (90, 90), ("90", 90), ("3d", 259200), ("12h", 43200)]
)
def test_a_label_delay_is_seconds_or_a_number_with_a_unit(value, seconds):
    assert parse_delay(value) == seconds


def test_a_malformed_delay_says_how_to_write_one():
    with pytest.raises(InvalidRequest, match="Invalid label_delay"):
        parse_delay("three days")


def test_the_window_ends_now_less_the_delay_and_spans_the_days_before(settings):
    since, until = _spec(settings, days=7, label_delay="1d").window(NOW)

    assert until == NOW - timedelta(days=1)
    assert since == until - timedelta(days=7)


def test_an_explicit_window_is_cut_by_the_delay_and_kept_once_resolved(settings):
    spec = _spec(settings, since="2026-03-01", until="2026-03-10T06:00:00Z", label_delay="12h")

    resolved = spec.resolved(NOW)

    assert resolved.window(NOW) == (datetime(2026, 3, 1, tzinfo=UTC), NOW - timedelta(hours=12))
    later = NOW + timedelta(days=3)  # a retry days later reads the same rows
    assert resolved.window(later) == resolved.window(NOW)
    assert EvaluateSpec.from_json(resolved.to_json(), settings) == resolved


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        ({"since": "2026-03-05", "until": "2026-03-01"}, InvalidRequest, "is not before"),
        ({"since": "last week"}, InvalidRequest, "Invalid since"),
        ({"days": 0}, InvalidRequest, "days must be between"),
        ({"days": True}, InvalidRequest, "whole number"),
        ({"since": "2999-01-01"}, InvalidRequest, "after the newest predictions"),
        ({"since": "2999-01-01", "until": "2999-02-01"}, InvalidRequest, "after the newest"),
        ({"threshold": 5}, InvalidRequest, "is not a fraction"),
        ({"model_version": "v2"}, InvalidRequest, "needs model_name"),
        ({"key_columns": "id, bad-name"}, InvalidIdentifier, "Invalid column name"),
        ({"labels_table": "mlsys-local.mlsys_dev.model_registry"}, ProtectedTable, "keeps"),
    ],
)
def test_bad_requests_are_refused_with_a_hint(settings, extra, error, message):
    fields = {
        "env": "dev",
        "output_table": "mlsys-local.titanic.predictions",
        "labels_table": "mlsys-local.titanic.outcomes",
        **extra,
    }
    with pytest.raises(error, match=message):
        EvaluateSpec.parse(settings=settings, **fields)


def test_a_window_inside_the_label_delay_has_nothing_to_read_yet(settings):
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()

    assert _spec(settings, since=yesterday).since is not None  # outcomes known at once
    with pytest.raises(InvalidRequest, match="less label_delay"):
        _spec(settings, since=yesterday, label_delay="3d")
