"""When a channel's next post may go out: `min_interval`, `max_per_day` and `quiet_hours`.

Pure arithmetic on a clock and the channel's pace; `distributor.admission` keeps the pace in Redis
and reserves each delivery's slot atomically, so a burst becomes posts spaced out in publish order.
Days and quiet hours are the site's (its time zone, daylight saving included).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from distributor.settings import ChannelSettings

_LOOKAHEAD = 10_000  # steps (quiet periods, full days) a slot may be pushed past: years of backlog


@dataclass(frozen=True)
class Rules:
    min_interval: float = 0.0  # seconds between two posts' starts
    max_per_day: int | None = None
    quiet: tuple[time, time] | None = None  # local start, end; the end may be the next morning

    @classmethod
    def of(cls, channel: ChannelSettings) -> Rules | None:
        """The channel's rules, or None when it has none (then nothing is reserved: no cost)."""
        interval = max(channel.min_interval or 0.0, 60.0 / channel.rate_per_minute if channel.rate_per_minute else 0.0)
        quiet = None
        if channel.quiet_hours:
            start, end = (time.fromisoformat(part) for part in channel.quiet_hours.split("-"))
            quiet = (start, end)
        if not interval and not channel.max_per_day and quiet is None:
            return None
        return cls(min_interval=interval, max_per_day=channel.max_per_day, quiet=quiet)


def day_field(day: date) -> str:
    """The field of the channel's pace hash counting the posts of one local day."""
    return f"day:{day.isoformat()}"


def quiet_until(moment: datetime, quiet: tuple[time, time]) -> datetime | None:
    """When the quiet period `moment` falls in ends (local time), or None when it is not quiet."""
    start, end = quiet
    local = moment.time().replace(tzinfo=None)
    tz = moment.tzinfo
    today = moment.date()
    if start < end:  # within one day, e.g. 12:00-13:30
        if start <= local < end:
            return datetime.combine(today, end, tzinfo=tz)
        return None
    if local >= start:  # overnight, e.g. 22:00-06:00: evening part
        return datetime.combine(today + timedelta(days=1), end, tzinfo=tz)
    if local < end:  # morning part
        return datetime.combine(today, end, tzinfo=tz)
    return None


def next_slot(now: float, next_free: float, counts: dict[str, int], rules: Rules, tz: tzinfo) -> tuple[float, str]:
    """The earliest time at or after max(now, next_free) outside quiet hours on a day that is not
    full, and the day field to count it in."""
    slot = max(now, next_free)
    for _ in range(_LOOKAHEAD):
        local = datetime.fromtimestamp(slot, tz)
        if rules.quiet is not None:
            end = quiet_until(local, rules.quiet)
            if end is not None:
                # A wall-clock end that does not exist (a daylight-saving gap) still orders correctly.
                slot = max(slot + 1.0, end.timestamp())
                continue
        field = day_field(local.date())
        if rules.max_per_day is not None and counts.get(field, 0) >= rules.max_per_day:
            slot = datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=tz).timestamp()
            continue
        return slot, field
    raise ValueError("no time slot within the look-ahead: check the channel's max_per_day and quiet_hours")
