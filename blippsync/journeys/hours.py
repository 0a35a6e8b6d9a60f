"""Allowed sending hours in the business's own time zone, and retry backoff.

A window is local wall-clock time ("08:00-21:00"); a step due outside it moves to the
next allowed minute. Wall-clock arithmetic goes through zoneinfo, so a daylight-saving
change moves the UTC instant, never the local hour the customer sees.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache

MINUTES_PER_DAY = 24 * 60
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class Window:
    """[start_minute, end_minute) of the local day; end 1440 means midnight."""

    start_minute: int
    end_minute: int

    @property
    def always(self) -> bool:
        return self.start_minute == 0 and self.end_minute == MINUTES_PER_DAY

    def narrowed(self, other: Window) -> Window:
        """The overlap (a sequence may only make SMS hours stricter); no overlap keeps self."""
        start = max(self.start_minute, other.start_minute)
        end = min(self.end_minute, other.end_minute)
        return self if end <= start else Window(start, end)

    def __str__(self) -> str:
        return (f"{self.start_minute // 60:02d}:{self.start_minute % 60:02d}-"
                f"{self.end_minute // 60:02d}:{self.end_minute % 60:02d}")


@lru_cache(maxsize=256)
def parse_window(text: str) -> Window:
    """"08:00-21:00" -> Window; ValueError with the reason otherwise."""
    match = _WINDOW.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a window like \"08:00-21:00\"")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start >= MINUTES_PER_DAY or end > MINUTES_PER_DAY or end <= start:
        raise ValueError(f"{text!r}: the window must start before it ends, within one day")
    return Window(start, end)


@lru_cache(maxsize=1024)
def zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def next_allowed(at: datetime, tz_name: str, window: Window) -> datetime:
    """The first instant at or after `at` (aware) inside the window, local to tz_name."""
    if window.always:
        return at
    tz = zone(tz_name)
    local = at.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if window.start_minute <= minute < window.end_minute:
        return at
    day = local.date() if minute < window.start_minute else local.date() + timedelta(days=1)
    start = time(window.start_minute // 60, window.start_minute % 60)
    # Build the local wall-clock start, then normalise through UTC: a start inside a DST
    # gap lands on the first real instant after it.
    candidate = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
    return max(candidate, at)


def retry_delay_seconds(attempt: int, base_seconds: int) -> int:
    """Backoff after failed attempt number `attempt` (1-based): base, 4x base, 16x base..."""
    return int(base_seconds * (4 ** max(0, attempt - 1)))
