"""When a schedule runs next: every N hours, or daily at HH:MM in an IANA time zone, with DST handled.

The rule, in the user's words:
- "every N hours" counts real hours (UTC), so a DST change neither shortens nor stretches the interval. The
  next run is the first slot of the grid anchored at the previous slot (previous + N h, + 2N h, ...) that is
  after now: a worker polling a few seconds late does not make the schedule drift, and after downtime the
  missed slots are skipped (the schedule runs once, then continues on its grid).
- "daily at HH:MM" is wall-clock time in the chosen zone, on the first day whose HH:MM is after now.
  * When HH:MM does not exist that day (spring forward: 02:30 in Europe/Berlin on the last Sunday of March,
    when clocks go from 02:00 to 03:00) it runs once, shifted forward by the gap: at 03:30 local time
    (RFC 5545's rule; it is what zoneinfo gives for fold=0).
  * When HH:MM happens twice (fall back: 02:30 on the last Sunday of October) it runs once, at the first
    02:30 (the summer-time one); the repeated 02:30 an hour later is not a new slot.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

MIN_HOURS, MAX_HOURS = 1, 168


def time_zone_names() -> list[str]:
    # Drop the legacy aliases (EST5EDT, Etc/GMT+3 and friends) that only confuse a picker.
    return sorted(name for name in available_timezones() if "/" in name and not name.startswith(("Etc/", "SystemV/")))


def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def daily_slot(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant (UTC) `at` o'clock on `day` in `tz`: the first one when it happens twice, shifted forward
    by the gap when it does not happen at all."""
    return datetime.combine(day, at.replace(fold=0), tzinfo=tz).astimezone(UTC)


def next_daily(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The first daily slot strictly after `now`."""
    day = now.astimezone(tz).date() - timedelta(days=1)
    while (slot := daily_slot(day, at, tz)) <= now:
        day += timedelta(days=1)
    return slot


def next_every(now: datetime, hours: int, anchor: datetime | None) -> datetime:
    """The first slot of the N-hour grid through `anchor` strictly after `now` (now + N h without anchor)."""
    step = timedelta(hours=hours)
    if anchor is None or anchor > now + step:
        return now + step
    if anchor > now:
        return anchor
    missed = (now - anchor) // step
    return anchor + (missed + 1) * step
