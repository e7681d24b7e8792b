"""Beat's scheduler: celery-redbeat, with schedules that live in Redis and change at runtime.

Every mlsys schedule (mlsys.jobs.schedules) is one redbeat entry, written when the schedule is
created or changed and deleted with it, so a running beat picks it up without a restart; only
the beat holding redbeat's lock sends anything. redbeat stores a crontab's fields but not its
time zone, so the zone travels in the entry's kwargs and `ZonedEntry` puts it back: the cron
is then evaluated in that zone, daylight saving time included.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from celery import Celery
from celery.schedules import crontab, schedule
from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat.schedulers import ensure_conf

from mlsys.jobs.schedules import Schedule, check_cron

#: The task a schedule's entry sends (worker/schedules.py).
RUN_SCHEDULE = "mlsys.schedule.run"


class ZonedEntry(RedBeatSchedulerEntry):
    """A redbeat entry whose crontab runs in the time zone named by its `timezone` kwarg."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        zone = (self.kwargs or {}).get("timezone")
        if zone and isinstance(self.schedule, crontab):
            # `tz` is a cached property of the schedule (the app's zone by default); crontab
            # matches its fields and computes the next run in this zone.
            self.schedule.tz = ZoneInfo(zone)


class MlsysScheduler(RedBeatScheduler):
    """redbeat's scheduler, loading entries as `ZonedEntry`."""

    Entry = ZonedEntry


def entry_for(app: Celery, item: Schedule, queue: str) -> ZonedEntry:
    if item.cron is not None:
        timing = crontab(**check_cron(item.cron), app=app)
    else:
        timing = schedule(timedelta(seconds=float(item.interval_seconds or 0)), app=app)
    return ZonedEntry(
        name=item.entry_name,
        task=RUN_SCHEDULE,
        schedule=timing,
        args=[item.schedule_id],
        kwargs={"timezone": item.timezone},
        options={"queue": queue},
        app=app,
    )


def install(app: Celery, item: Schedule, queue: str) -> None:
    """Write (or rewrite) the schedule's entry; a paused schedule has none. The first run is
    the next one after now: creating or resuming a schedule does not fire it at once."""
    remove(app, item)
    if item.paused:
        return
    entry = entry_for(app, item, queue)
    entry.last_run_at = datetime.now(ZoneInfo(item.timezone))
    entry.save()


def remove(app: Celery, item: Schedule) -> None:
    ensure_conf(app)
    RedBeatSchedulerEntry(name=item.entry_name, app=app).delete()


def upcoming(item: Schedule, count: int, after: datetime) -> list[datetime]:
    """The next `count` times a cron schedule fires after `after`, in its zone, as beat's
    crontab computes them (its day-of-month and day-of-week both apply; DST in the zone).
    An interval schedule: every interval from `after`."""
    zone = ZoneInfo(item.timezone)
    moment = after.astimezone(zone)
    if item.cron is None:
        step = timedelta(seconds=float(item.interval_seconds or 0))
        return [moment + step * (i + 1) for i in range(count)]
    timing = crontab(**check_cron(item.cron))
    timing.tz = zone
    out = []
    for _ in range(count):
        start, delta, _now = timing.remaining_delta(moment)
        # Through UTC and back: a wall time in a DST gap becomes the instant it really is.
        moment = (start + delta).astimezone(UTC).astimezone(zone)
        out.append(moment)
    return out


def next_run(app: Celery, item: Schedule) -> str | None:
    """When beat will fire the schedule next (ISO time, its zone), or None (paused or no entry).

    Computed from the entry's last run and the cron or interval, not redbeat's `due_at`: that
    adds the time left *from now* to the last run, so it drifts earlier as the schedule ages.
    A run already due (beat was down) fires at beat's next tick: now."""
    if item.paused:
        return None
    # redbeat sets up its configuration on an app lazily, when an entry is first saved or a
    # scheduler starts: a process that only reads (a web process just restarted) has none yet.
    ensure_conf(app)
    try:
        entry = ZonedEntry.from_key(ZonedEntry.generate_key(app, item.entry_name), app=app)
    except KeyError:
        return None
    now = datetime.now(UTC)
    last = entry.last_run_at or now
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    due = max(upcoming(item, 1, last)[0], now)
    return due.replace(microsecond=0).astimezone(ZoneInfo(item.timezone)).isoformat()
