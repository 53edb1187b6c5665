"""Time handling in one place: every datetime callwatch keeps is timezone-aware UTC.

EU deadlines are announced in Brussels time (17:00 CET/CEST is the portal's usual cut-off),
subscribers read them in their own zone, and the database stores UTC. Helpers here turn a
local date and time into UTC, check awareness, and parse human durations such as "6h".
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The time zone ``name``, kept. ``ZoneInfo`` itself keeps only the 8 zones used last
    (and the others while referenced): a digest round over subscribers of 10 zones read
    their files again for most subscribers."""
    return ZoneInfo(name)

#: The portal's cut-off time when a deadline is published as a bare date.
PORTAL_CUTOFF = time(17, 0)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def to_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive datetimes are refused because their zone is unknown."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no timezone")
    return value.astimezone(UTC)


def days_left(cutoff: datetime, now: datetime, zone: ZoneInfo) -> int:
    """Calendar days from ``now``'s day to ``cutoff``'s day, both in ``zone`` (the reader's):
    0 on the cut-off's own day, 1 the day before, whatever the hours. Counted by dates,
    not by 24-hour spans, so a reminder "3 days before" falls on the same day for every
    reader of one zone, and a DST change moves no one's day. The one count that digests'
    "closing soon", reminders and every rendered "N days left" share."""
    return (to_utc(cutoff).astimezone(zone).date() - to_utc(now).astimezone(zone).date()).days


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``zone`` (DST handled by zoneinfo)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def end_of_day_utc(day: date, zone: ZoneInfo) -> datetime:
    """23:59:59 of ``day`` in ``zone``, in UTC: what a date without a time means on most sites."""
    return local_to_utc(day, time(23, 59, 59), zone)


def parse_duration(text: str) -> timedelta:
    """Parse "6h", "30s", "1d12h", "90m" or "0s" into a timedelta; raise ValueError otherwise.

    Zero parses; whether a zero (or any) duration makes sense is the setting's rule.
    """
    cleaned = text.strip().replace(" ", "")
    if not cleaned:
        raise ValueError("empty duration")
    position = 0
    seconds = 0.0
    for match in _DURATION_PART.finditer(cleaned):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        position = match.end()
    if position != len(cleaned):
        raise ValueError(f"expected a duration like '6h', '30m' or '1d12h', got {text!r}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration` for display ("6h", "1d12h", "30s")."""
    remaining = int(value.total_seconds())
    parts: list[str] = []
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(parts) or "0s"


def isoformat_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z`` suffix, the form used in JSON output and change events."""
    if value is None:
        return None
    return to_utc(value).isoformat().replace("+00:00", "Z")
