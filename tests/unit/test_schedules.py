"""Schedule timing: cron fields, time zones (daylight saving time included), intervals."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mlsys.errors import InvalidRequest
from mlsys.schedules import Schedule, check_cron, check_timing
from mlsys.settings import Settings
from worker.app import create_celery
from worker.beat import ZonedEntry, entry_for

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "cron",
    ["0 6 * * *", "*/15 * * * mon-fri", "0 0 1,15 jan-jun *", "5 4 * * 7", "0 9-17/2 * * 1-5"],
)
def test_valid_cron_expressions_split_into_crontab_fields(cron):
    fields = check_cron(cron)
    assert list(fields) == ["minute", "hour", "day_of_month", "month_of_year", "day_of_week"]


@pytest.mark.parametrize(
    ("cron", "field"),
    [
        ("0 6 * *", "five fields"),
        ("60 * * * *", "minute"),
        ("0 24 * * *", "hour"),
        ("0 0 0 * *", "day_of_month"),
        ("0 0 * foo *", "month_of_year"),
        ("0 0 * * 8", "day_of_week"),
        ("*/0 * * * *", "minute"),
        ("0 5-2 * * *", "hour"),
        ("0 0 * * ;rm", "day_of_week"),
    ],
)
def test_invalid_cron_expressions_name_the_field(cron, field):
    with pytest.raises(InvalidRequest, match=field):
        check_cron(cron)


def test_timing_needs_one_of_cron_and_interval_a_known_zone_and_a_minimum():
    check_timing("0 6 * * *", None, "Europe/Paris", 60)
    check_timing(None, 120, "UTC", 60)
    for cron, interval in (("0 6 * * *", 60), (None, None)):
        with pytest.raises(InvalidRequest, match="exactly one"):
            check_timing(cron, interval, "UTC", 60)
    with pytest.raises(InvalidRequest, match="at least 60"):
        check_timing(None, 5, "UTC", 60)
    with pytest.raises(InvalidRequest, match="time zone"):
        check_timing("0 6 * * *", None, "Mars/Olympus", 60)


def _schedule(**timing) -> Schedule:
    return Schedule(schedule_id="a" * 32, principal="p", predict={}, **timing)


def test_a_cron_runs_in_its_own_time_zone_across_daylight_saving_time():
    app = create_celery(Settings(_env_file=None))
    entry = entry_for(app, _schedule(cron="0 6 * * *", timezone="Europe/Paris"), "mlsys")
    assert isinstance(entry, ZonedEntry)
    paris = ZoneInfo("Europe/Paris")
    # The evening before Europe moves to summer time (29 March 2026, 02:00 -> 03:00).
    last = datetime(2026, 3, 28, 6, 0, 30, tzinfo=paris)
    start, delta, _ = entry.schedule.remaining_delta(last)
    following = start + delta
    assert following.replace(tzinfo=paris) == datetime(2026, 3, 29, 6, 0, tzinfo=paris)
    assert following.replace(tzinfo=paris).astimezone(UTC).hour == 4  # 06:00 CEST is 04:00 UTC
    winter = entry.schedule.remaining_delta(datetime(2026, 1, 10, 6, 0, 30, tzinfo=paris))
    assert (winter[0] + winter[1]).replace(tzinfo=paris).astimezone(UTC).hour == 5

    utc = entry_for(app, _schedule(cron="0 6 * * *"), "mlsys")
    start, delta, _ = utc.schedule.remaining_delta(datetime(2026, 3, 28, 6, 0, 30, tzinfo=UTC))
    assert (start + delta).astimezone(UTC).hour == 6


def test_an_interval_schedule_is_a_plain_interval():
    app = create_celery(Settings(_env_file=None))
    entry = entry_for(app, _schedule(interval_seconds=90.0), "mlsys")
    assert entry.schedule.run_every.total_seconds() == 90
    assert entry.args == ["a" * 32] and entry.options == {"queue": "mlsys"}
