"""One CSV row -> the records it stands for: a customer, maybe a job, or a rejection.

Row rules (docs/csv.md): blank rows are skipped; missing trailing cells are empty (many
exports trim them); extra cells are ignored when empty and reject the row otherwise (an
unquoted delimiter inside a cell shifts every column after it, so the row's data cannot
be trusted); a row with no name, no email and no phone is rejected. A bad date rejects
only the event: the customer is still imported.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from operator import itemgetter

from blippsync.records import CustomerRecord, EventRecord, Record, Rejected
from connectors.csv.columns import ColumnPlan
from connectors.csv.dates import DateParser

EVENT_TYPE = "job_completed"


def derived_external_id(email: str, phone: str, name: str) -> str:
    """A stable id for a row without one: from the email, else the phone digits, else the
    name. Content, not position, so a re-export with rows reordered, added or removed
    maps every person to the same id (a row number would not)."""
    if email:
        key = "email:" + email.strip().lower()
    elif (digits := "".join(ch for ch in phone if ch.isdigit())):
        key = "phone:" + digits
    else:
        key = "name:" + " ".join(name.casefold().split())
    return "csv:" + hashlib.sha1(key.encode()).hexdigest()


# The order of the fields `RowConverter._get` returns.
ROW_FIELDS = ("external_id", "name", "first_name", "last_name", "email", "phone", "address",
              "city", "state", "zip", "tags", "completed_at")


class RowConverter:
    """Converts rows of one file; column lookups are precomputed (one itemgetter call a
    row), because at a million rows every microsecond is a second."""

    def __init__(self, plan: ColumnPlan, file_name: str, dates: DateParser,
                 delimiter_name: str) -> None:
        self.width = width = len(plan.headers)
        self.file_name = file_name
        self.delimiter_name = delimiter_name
        self.dates = dates
        # An absent field reads index `width`: the empty cell appended to every row.
        indexes = [plan.indexes.get(f, ()) for f in ROW_FIELDS]
        self._get = itemgetter(*(ix[0] if ix else width for ix in indexes))
        self._fallbacks = tuple((n, ix[1:]) for n, ix in enumerate(indexes) if len(ix) > 1)
        self.has_region = any(plan.indexes.get(f) for f in ("city", "state", "zip"))

    def convert(self, line: int, cells: list[str]) -> tuple[Record, ...]:
        width = self.width
        location = f"{self.file_name}:{line}"
        if len(cells) != width:
            if len(cells) < width:
                cells = cells + [""] * (width - len(cells))
            elif any(c.strip() for c in cells[width:]):
                return (Rejected(f"{len(cells)} cells but the header has {width} (an "
                                 f"unquoted {self.delimiter_name} inside a cell?)", location),)
        cells.append("")
        (id_, name, first, last, email, phone, street, city, state, zip_, tags,
         raw_date) = self._values(cells)
        if not name and (first or last):
            name = f"{first} {last}".strip()
        if not (name or email or phone):
            if not any(c.strip() for c in cells):
                return ()
            return (Rejected("no name, email or phone", location),)
        external_id = id_ or derived_external_id(email, phone, name)
        if self.has_region:
            region = f"{state} {zip_}".strip()
            street = ", ".join([p for p in (street, city, region) if p])
        customer = CustomerRecord(
            external_id=external_id, name=name or None, email=email or None,
            phone=phone or None, address=street or None,
            tags=_split_tags(tags) if tags else (), location=location)
        if not raw_date:
            return (customer,)
        parsed = self.dates.parse(raw_date)
        if isinstance(parsed, str):
            return customer, Rejected(parsed, location, "completed_at", raw_date)
        occurred_at, key = parsed
        return customer, EventRecord(
            event_type=EVENT_TYPE, dedupe_key=f"csv:{external_id}:{EVENT_TYPE}:{key}",
            customer_external_id=external_id, occurred_at=occurred_at,
            payload={"date": raw_date, "file": self.file_name, "line": line},
            location=location)

    def _values(self, cells: list[str]) -> list[str]:
        """Each ROW_FIELDS value, stripped; several columns -> the first non-empty one."""
        values = [v.strip() for v in self._get(cells)]
        for n, more in self._fallbacks:
            if not values[n]:
                values[n] = next((v for v in (cells[i].strip() for i in more) if v), "")
        return values


@lru_cache(maxsize=4096)
def _split_tags(text: str) -> tuple[str, ...]:
    """'vip, residential; spring' -> ('vip', 'residential', 'spring'); cached, since an
    export repeats a handful of tag cells."""
    return tuple(t for t in (p.strip() for p in text.replace(";", ",").split(",")) if t)
