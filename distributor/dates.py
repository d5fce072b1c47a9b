"""Dates as Vietnamese portals print them, turned into timezone-aware datetimes in the site's zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Asia/Ho_Chi_Minh"

# "Thứ 3, Ngày 13/07/2021, 21:00", "13/07/2021 08:30", "13-07-2021", "13/07/2021 - 08:30:15"
_NUMERIC = re.compile(
    r"(?P<d>\d{1,2})[/\-.](?P<m>\d{1,2})[/\-.](?P<y>\d{4})"
    r"(?:\D{0,12}?(?P<H>\d{1,2})[:hg](?P<M>\d{2})(?::(?P<S>\d{2}))?)?",
    re.IGNORECASE,
)
# "ngày 13 tháng 7 năm 2021", optionally followed by a time
_WORDS = re.compile(
    r"ngày\s+(?P<d>\d{1,2})\s+tháng\s+(?P<m>\d{1,2})\s+năm\s+(?P<y>\d{4})"
    r"(?:\D{0,12}?(?P<H>\d{1,2})[:hg](?P<M>\d{2}))?",
    re.IGNORECASE,
)
# A time printed before the date: "21:00 13/07/2021". One `\s*` before the optional separator
# and one after it would backtrack quadratically over a long run of spaces.
_TIME_FIRST = re.compile(
    r"(?P<H>\d{1,2})[:h](?P<M>\d{2})(?:\s*[,-])?\s*(?:ngày\s*)?"
    r"(?P<d>\d{1,2})[/\-.](?P<m>\d{1,2})[/\-.](?P<y>\d{4})",
    re.IGNORECASE,
)


def zone(name: str | None) -> tzinfo:
    return ZoneInfo(name or DEFAULT_TZ)


def aware(value: datetime, tz: tzinfo) -> datetime:
    """Attach `tz` to a naive datetime, convert an aware one into `tz`."""
    if value.tzinfo is None:
        return value.replace(tzinfo=tz)
    return value.astimezone(tz)


def _from_match(match: re.Match[str], tz: tzinfo) -> datetime | None:
    parts = match.groupdict()
    try:
        return datetime(
            int(parts["y"]),
            int(parts["m"]),
            int(parts["d"]),
            int(parts.get("H") or 0),
            int(parts.get("M") or 0),
            int(parts.get("S") or 0),
            tzinfo=tz,
        )
    except ValueError:
        return None


def parse_date(text: str | None, tz: tzinfo) -> datetime | None:
    """Parse ISO 8601, RFC 822 or a Vietnamese date line; None when nothing date-like is found."""
    try:
        return in_zone(_parse(text, tz), tz)
    except OverflowError:  # shifting year 1 or 9999 to another zone leaves the calendar
        return None


def in_zone(value: datetime | None, tz: tzinfo) -> datetime | None:
    """`aware(value, tz)`, or None when that moment cannot be shifted to UTC (year 1 or 9999 at
    the edge): no article is dated so, and comparing or storing it would raise OverflowError."""
    if value is None:
        return None
    try:
        moment = aware(value, tz)
        moment.astimezone(UTC)
    except OverflowError:
        return None
    return moment


def _parse(text: str | None, tz: tzinfo) -> datetime | None:
    if not text:
        return None
    text = text.strip()
    try:
        return aware(datetime.fromisoformat(text.replace("Z", "+00:00")), tz)
    except ValueError:
        pass
    if re.match(r"^[A-Za-z]{3},?\s+\d", text):
        try:
            return aware(parsedate_to_datetime(text), tz)
        except (TypeError, ValueError):
            pass
    for pattern in (_TIME_FIRST, _WORDS, _NUMERIC):
        match = pattern.search(text)
        if match:
            parsed = _from_match(match, tz)
            if parsed is not None:
                return parsed
    return None
