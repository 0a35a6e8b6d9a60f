"""One CSV row -> the records it stands for: a customer, maybe a job, notes, or a rejection.

Row rules (docs/csv.md): blank rows are skipped; missing trailing cells are empty (many
exports trim them); extra cells are set aside with a warning (their text is never read
into a field); a mapped cell longer than MAX_VALUE_CHARS is set aside with a warning; a
report's title or footer line ("Thursday, December 3, 2026 09:14 AM GMT-08:00") is
skipped; a row with no name, no email and no phone is rejected. A bad date rejects only
the event: the customer is still imported.

Cells are passed through raw: a cell may list several emails or numbers, which the core
splits. Every email column and every number column is kept; a column called mobile (or a
Google "Phone N - Value" typed Mobile) gives the number SMS goes to.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from operator import itemgetter

from blippsync.records import CustomerRecord, EventRecord, Note, Record, Rejected
from connectors.csv.columns import MOBILE_WORDS, ColumnPlan
from connectors.csv.dates import DateParser

EVENT_TYPE = "job_completed"
MAX_VALUE_CHARS = 1000  # no name, address or list of contacts is longer: a pasted note is
_ADDRESS = re.compile(r"[^\s<>,;\"()\[\]:]+@[^\s<>,;\"()\[\]]+")
# QuickBooks names a job or sub-customer "Parent:Job" (not a formula, not a URL)
_JOB_LINE = re.compile(r"^[^:=+@(\-][^:]*:(?!//)\S")
_REPORT_LINE = re.compile(
    r"^(?:(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday),|"
    r"(?:accrual|cash) basis\b|total\b|page \d+ of \d+)|\bgmt[+-]\d", re.IGNORECASE)


def derived_external_id(email: str, phone: str, name: str) -> str:
    """A stable id for a row without one: from the email, else the phone digits, else the
    name. Content, not position, so a re-export with rows reordered, added or removed
    maps every person to the same id (a row number would not)."""
    if email:
        key = "email:" + _first_address(email)
    elif (digits := "".join(ch for ch in phone if ch.isdigit())):
        key = "phone:" + digits
    else:
        key = "name:" + " ".join(name.casefold().split())
    return "csv:" + hashlib.sha1(key.encode()).hexdigest()


def _first_address(cell: str) -> str:
    """The cell's first address, lower-cased: 'Mary <MARY@x.com>, b@y.com' -> 'mary@x.com',
    so a later export writing the address plainly gives the same id."""
    text = cell.strip().lower()
    if any(ch in text for ch in " ,;<>\n"):
        found = _ADDRESS.search(text)
        return found.group(0) if found else text
    return text


# The order of the fields `RowConverter._get` returns.
ROW_FIELDS = ("external_id", "name", "first_name", "last_name", "company", "email", "phone",
              "mobile", "address", "city", "state", "zip", "tags", "completed_at")
# Fields whose every column is kept (the others take the first non-empty column).
_ALL_COLUMNS = ("email", "phone", "mobile")


class RowConverter:
    """Converts rows of one file; column lookups are precomputed (one itemgetter call a
    row), because at a million rows every microsecond is a second."""

    def __init__(self, plan: ColumnPlan, file_name: str, dates: DateParser,
                 delimiter_name: str) -> None:
        self.width = width = len(plan.headers)
        self.file_name = file_name
        self.delimiter_name = delimiter_name
        self.dates = dates
        self.headers = plan.headers
        # An absent field reads index `width`: the empty cell appended to every row.
        indexes = [plan.indexes.get(f, ()) for f in ROW_FIELDS]
        self._get = itemgetter(*(ix[0] if ix else width for ix in indexes))
        self._fallbacks = tuple((n, ix[1:]) for n, ix in enumerate(indexes)
                                if len(ix) > 1 and ROW_FIELDS[n] not in _ALL_COLUMNS)
        # further email / number columns: (field, column, the column saying its kind)
        self._more = tuple((f, i, plan.phone_types.get(i))
                           for f in _ALL_COLUMNS for i in plan.indexes.get(f, ())[1:])
        self._first_phone_type = plan.phone_types.get((plan.indexes.get("phone") or (-1,))[0])
        self.has_region = any(plan.indexes.get(f) for f in ("city", "state", "zip"))

    def convert(self, line: int, cells: list[str]) -> tuple[Record, ...]:
        width = self.width
        location = f"{self.file_name}:{line}"
        notes: tuple[Record, ...] = ()
        extra = 0
        if len(cells) != width:
            if len(cells) < width:
                cells = cells + [""] * (width - len(cells))
            else:
                extra = sum(1 for c in cells[width:] if c.strip())
                cells = cells[:width]
        cells.append("")
        values = self._values(cells)
        if extra:
            if not _aligned(values):
                return (Rejected(f"{width + extra} cells but the header has {width}, and the "
                                 "email or phone column holds something else (an unquoted "
                                 f"{self.delimiter_name} inside a cell?)", location),)
            notes = (Note(f"{extra} cell(s) beyond the header's {width} columns were set "
                          "aside", location),)
        if max(map(len, values)) > MAX_VALUE_CHARS:
            notes += self._set_aside_long(values, location)
        (id_, name, first, last, company, email, phone, mobile, street, city, state, zip_,
         tags, raw_date) = values
        if not name:
            name = f"{first} {last}".strip() if (first or last) else company
        if not (email or phone or mobile):
            if _is_report_line(cells):
                return (*notes, Note("a report title or footer line, not a customer: "
                                     "skipped", location))
            if _JOB_LINE.match(name):
                return (*notes, Note(f"{name!r} is a QuickBooks sub-customer (job) line "
                                     "without contact details; its parent is the customer: "
                                     "skipped", location, "name"))
            if not name:
                if not any(c.strip() for c in cells):
                    return notes
                return (*notes, Rejected("no name, email or phone", location))
        emails: tuple[str, ...] = ()
        phones: tuple[str, ...] = ()
        if self._first_phone_type is not None and _says_mobile(cells[self._first_phone_type]):
            phone, mobile = "", mobile or phone
        if self._more:
            email, phone, mobile, emails, phones = self._gather(cells, email, phone, mobile)
        external_id = id_ or derived_external_id(email, phone or mobile, name)
        if self.has_region:
            region = f"{state} {zip_}".strip()
            street = ", ".join([p for p in (street, city, region) if p])
        customer = CustomerRecord(
            external_id=external_id, name=name or None, email=email or None,
            phone=phone or None, mobile=mobile or None, emails=emails, phones=phones,
            address=street or None, tags=_split_tags(tags) if tags else (), location=location)
        if not raw_date:
            return (*notes, customer)
        parsed = self.dates.parse(raw_date)
        if isinstance(parsed, str):
            return (*notes, customer, Rejected(parsed, location, "completed_at", raw_date))
        occurred_at, key = parsed
        return (*notes, customer, EventRecord(
            event_type=EVENT_TYPE, dedupe_key=f"csv:{external_id}:{EVENT_TYPE}:{key}",
            customer_external_id=external_id, occurred_at=occurred_at,
            payload={"date": raw_date, "file": self.file_name, "line": line},
            location=location))

    def _values(self, cells: list[str]) -> list[str]:
        """Each ROW_FIELDS value, stripped; several columns -> the first non-empty one."""
        values = [v.strip() for v in self._get(cells)]
        for n, more in self._fallbacks:
            if not values[n]:
                values[n] = next((v for v in (cells[i].strip() for i in more) if v), "")
        return values

    def _gather(self, cells: list[str], email: str, phone: str, mobile: str
                ) -> tuple[str, str, str, tuple[str, ...], tuple[str, ...]]:
        """Every further email and number column: the first non-empty of each kind is the
        main one, the rest are kept beside it."""
        emails: list[str] = []
        phones: list[str] = []
        for field, i, kind_column in self._more:
            value = cells[i].strip()
            if not value or len(value) > MAX_VALUE_CHARS:
                continue
            if field == "phone" and kind_column is not None and _says_mobile(cells[kind_column]):
                field = "mobile"
            if field == "email":
                email, emails = (value, emails) if not email else (email, [*emails, value])
            elif field == "mobile":
                mobile, phones = (value, phones) if not mobile else (mobile, [*phones, value])
            else:
                phone, phones = (value, phones) if not phone else (phone, [*phones, value])
        return email, phone, mobile, tuple(emails), tuple(phones)

    def _set_aside_long(self, values: list[str], location: str) -> tuple[Record, ...]:
        notes = []
        for n, value in enumerate(values):
            if len(value) > MAX_VALUE_CHARS:
                values[n] = ""
                notes.append(Note(f"a {len(value):,}-character cell is not a "
                                  f"{ROW_FIELDS[n].replace('_', ' ')}: set aside", location,
                                  ROW_FIELDS[n]))
        return tuple(notes)


def _aligned(values: list[str]) -> bool:
    """Whether a row with extra cells still has its email and phone where the header says:
    an unquoted delimiter shifts a name into the email column, an email into the phone's."""
    email, phone, mobile = values[5], values[6], values[7]
    return ((not email or "@" in email) and all(not p or (any(c.isdigit() for c in p)
                                                             and "@" not in p)
                                                for p in (phone, mobile)))


def _is_report_line(cells: list[str]) -> bool:
    """One non-empty cell reading like a report's footer or title (QuickBooks prints the
    date and time, the accounting basis, totals and page numbers)."""
    filled = [c for c in cells if c.strip()]
    return len(filled) == 1 and _REPORT_LINE.search(filled[0].strip()) is not None


def _says_mobile(kind: str) -> bool:
    text = kind.casefold()
    return any(word in text for word in MOBILE_WORDS)


@lru_cache(maxsize=4096)
def _split_tags(text: str) -> tuple[str, ...]:
    """'vip, residential; spring' -> ('vip', 'residential', 'spring'); Google's
    '* myContacts ::: Customers' -> ('Customers') (its system groups start with '*').
    Cached, since an export repeats a handful of tag cells."""
    parts = text.replace(":::", ",").replace(";", ",").split(",")
    return tuple(t for t in (p.strip() for p in parts) if t and not t.startswith("* "))
