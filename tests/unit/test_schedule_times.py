"""When a schedule fires: the times beat's crontab computes, in the schedule's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlsys.jobs.schedules import Schedule
from worker.beat import upcoming

pytestmark = pytest.mark.unit


def _schedule(cron: str | None, zone: str = "UTC", interval: float | None = None) -> Schedule:
    return Schedule("s1", "alice", {}, cron=cron, interval_seconds=interval, timezone=zone)


def _utc(times: list[datetime]) -> list[str]:
    return [t.astimezone(UTC).strftime("%m-%d %H:%M") for t in times]


def test_a_morning_run_in_paris_is_five_utc_in_winter_and_four_in_summer():
    winter = upcoming(
        _schedule("0 6 * * *", "Europe/Paris"), 2, datetime(2026, 12, 6, 5, 17, tzinfo=UTC)
    )
    assert _utc(winter) == ["12-07 05:00", "12-08 05:00"]
    assert winter[0].isoformat() == "2026-12-07T06:00:00+01:00"  # in the schedule's zone
    summer = upcoming(
        _schedule("0 6 * * *", "Europe/Paris"), 1, datetime(2026, 7, 1, 3, 0, tzinfo=UTC)
    )
    assert _utc(summer) == ["07-01 04:00"]


def test_the_runs_cross_a_daylight_saving_change_at_the_same_wall_time():
    runs = upcoming(
        _schedule("30 8 * * *", "Europe/Paris"), 3, datetime(2026, 3, 28, 12, tzinfo=UTC)
    )
    assert _utc(runs) == ["03-29 06:30", "03-30 06:30", "03-31 06:30"]
    assert {t.strftime("%H:%M") for t in runs} == {"08:30"}


def test_day_of_month_and_day_of_week_both_apply_as_in_beat():
    runs = upcoming(_schedule("0 6 1 * mon"), 2, datetime(2026, 12, 6, tzinfo=UTC))
    assert _utc(runs) == ["02-01 06:00", "03-01 06:00"]  # the 1sts that are Mondays


def test_an_interval_schedule_runs_every_interval():
    runs = upcoming(_schedule(None, interval=3600), 3, datetime(2026, 12, 6, 5, tzinfo=UTC))
    assert _utc(runs) == ["12-06 06:00", "12-06 07:00", "12-06 08:00"]
