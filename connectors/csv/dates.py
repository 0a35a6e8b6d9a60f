"""Reading the job date column: a few unambiguous formats, anything else rejected.

Accepted (see docs/csv.md): ISO 8601 (`2024-05-01`, `2024-05-01 14:30`,
`2024-05-01T14:30:00Z`), slash dates in the configured order (`5/1/2024`, US month
first by default, `date_order = "dmy"` for day first), dotted day-first dates
(`1.5.2024`), month names (`May 1, 2024`, `1 May 2024`, `01-May-2024`), each with an
optional time (`14:30`, `2:30 PM`). Two-digit years are 20YY. `05-06-2024` is refused as
ambiguous. Results are cached per distinct string: an export repeats few dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo

MONTH_NAME_FORMATS = ("%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y", "%d %b %Y",
                      "%d %B %Y", "%d-%b-%Y", "%d-%b-%y", "%d %b, %Y", "%d %B, %Y")
CACHE_MAX_ENTRIES = 100_000
NOON = time(12, 0)
HINT = "use YYYY-MM-DD, M/D/YYYY or D.M.YYYY"


class DateParser:
    """raw cell -> (aware datetime, dedupe text) or a reason string when unusable.

    Dates without a time are noon in `tz` (the business's time zone), so the day never
    shifts when shown locally; naive times are read in `tz` too.
    """

    def __init__(self, tz: tzinfo = UTC, order: str = "mdy") -> None:
        if order not in ("mdy", "dmy"):
            raise ValueError(f"date_order must be 'mdy' or 'dmy', not {order!r}")
        self.tz = tz
        self.order = order
        self._cache: dict[str, tuple[datetime, str] | str] = {}

    def parse(self, raw: str) -> tuple[datetime, str] | str:
        hit = self._cache.get(raw)
        if hit is None:
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                self._cache.clear()
            try:
                hit = self._parse(raw.strip())
            except ValueError as exc:
                hit = f"unusable date {raw!r}: {exc}"
            self._cache[raw] = hit
        return hit

    def _parse(self, text: str) -> tuple[datetime, str]:
        if len(text) >= 10 and text[4] == "-" and text[7] == "-" and text[:4].isdigit():
            if len(text) == 10:
                return self._at_noon(date.fromisoformat(text))
            if text.upper().endswith(("AM", "PM")):  # Excel's "2026-12-01 2:30 PM"
                day_part, _, time_part = text.partition(" ")
                return self._at_time(datetime.combine(date.fromisoformat(day_part),
                                                      _parse_time(time_part)))
            return self._at_time(datetime.fromisoformat(text))
        day_text, _, time_text = text.partition(" ")
        if "/" in day_text or "." in day_text:
            day = self._numeric_day(day_text)
            if not time_text.strip():
                return self._at_noon(day)
            return self._at_time(datetime.combine(day, _parse_time(time_text)))
        for fmt in MONTH_NAME_FORMATS:
            try:
                return self._at_noon(datetime.strptime(text, fmt).date())
            except ValueError:
                continue
        if "-" in day_text and day_text.replace("-", "").isdigit():
            raise ValueError(f"ambiguous day/month order; {HINT}")
        raise ValueError(f"not a date format we read; {HINT}")

    def _numeric_day(self, text: str) -> date:
        sep = "/" if "/" in text else "."
        parts = text.split(sep)
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"expected three numbers; {HINT}")
        a, b, year = (int(p) for p in parts)
        if len(parts[2]) == 2:
            year += 2000
        elif len(parts[2]) != 4:
            raise ValueError(f"the year must have 4 (or 2) digits; {HINT}")
        if sep == "." or self.order == "dmy":
            return date(year, b, a)
        if a > 12 >= b:
            raise ValueError("month first (M/D/YYYY) is expected, and this looks day first; "
                             "set date_order = \"dmy\" for day-first files")
        return date(year, a, b)

    def _at_noon(self, day: date) -> tuple[datetime, str]:
        return datetime.combine(day, NOON, self.tz), day.isoformat()

    def _at_time(self, value: datetime) -> tuple[datetime, str]:
        if value.tzinfo is None:
            return value.replace(tzinfo=self.tz), value.isoformat()
        return value, value.astimezone(UTC).isoformat()


def _parse_time(text: str) -> time:
    """'14:30', '14:30:05', '2:30 PM', '2:30pm'."""
    t = text.strip().upper().replace(" ", "")
    meridian = t[-2:] if t.endswith(("AM", "PM")) else ""
    parts = (t[:-2] if meridian else t).split(":")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"unreadable time {text.strip()!r}")
    hour, minute = int(parts[0]), int(parts[1])
    second = int(parts[2]) if len(parts) == 3 else 0
    if meridian:
        if not 1 <= hour <= 12:
            raise ValueError(f"unreadable time {text.strip()!r}")
        hour = hour % 12 + (12 if meridian == "PM" else 0)
    return time(hour, minute, second)
