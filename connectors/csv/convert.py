"""One CSV row -> the records it stands for: a customer, maybe a job, or a rejection.

Row rules (docs/csv.md): blank rows are skipped; missing trailing cells are empty (many
exports trim them); extra cells are ignored when empty and reject the row otherwise (an
unquoted delimiter inside a cell shifts every column after it, so the row's data cannot
be trusted); a row with no name, no email and no phone is rejected. A bad date rejects
only the event: the customer is still imported.
"""

from __future__ import annotations

import hashlib

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


def _picker(indexes: tuple[int, ...]):  # type: ignore[no-untyped-def]
    """cells -> the first non-empty stripped cell among `indexes` ('' if none)."""
    if not indexes:
        return lambda cells: ""
    if len(indexes) == 1:
        (only,) = indexes
        return lambda cells: cells[only].strip()

    def first(cells: list[str]) -> str:
        for i in indexes:
            value = cells[i].strip()
            if value:
                return value
        return ""
    return first


class RowConverter:
    def __init__(self, plan: ColumnPlan, file_name: str, dates: DateParser,
                 delimiter_name: str) -> None:
        ix = plan.indexes
        self.width = len(plan.headers)
        self.file_name = file_name
        self.delimiter_name = delimiter_name
        self.dates = dates
        self.id_ = _picker(ix.get("external_id", ()))
        self.name = _picker(ix.get("name", ()))
        self.first = _picker(ix.get("first_name", ()))
        self.last = _picker(ix.get("last_name", ()))
        self.email = _picker(ix.get("email", ()))
        self.phone = _picker(ix.get("phone", ()))
        self.street = _picker(ix.get("address", ()))
        self.city = _picker(ix.get("city", ()))
        self.state = _picker(ix.get("state", ()))
        self.zip = _picker(ix.get("zip", ()))
        self.tags = _picker(ix.get("tags", ()))
        self.date = _picker(ix.get("completed_at", ()))
        self.has_city = bool(ix.get("city") or ix.get("state") or ix.get("zip"))

    def convert(self, line: int, cells: list[str]) -> tuple[Record, ...]:
        width = self.width
        location = f"{self.file_name}:{line}"
        if len(cells) != width:
            if len(cells) < width:
                cells = cells + [""] * (width - len(cells))
            elif any(c.strip() for c in cells[width:]):
                return (Rejected(f"{len(cells)} cells but the header has {width} (an "
                                 f"unquoted {self.delimiter_name} inside a cell?)", location),)
        name = self.name(cells)
        if not name:
            name = " ".join(p for p in (self.first(cells), self.last(cells)) if p)
        email = self.email(cells)
        phone = self.phone(cells)
        if not (name or email or phone):
            if not any(c.strip() for c in cells):
                return ()
            return (Rejected("no name, email or phone", location),)
        external_id = self.id_(cells) or derived_external_id(email, phone, name)
        tags = self.tags(cells)
        customer = CustomerRecord(
            external_id=external_id, name=name or None, email=email or None,
            phone=phone or None, address=self._address(cells),
            tags=tuple(t for t in (p.strip() for p in tags.replace(";", ",").split(",")) if t)
            if tags else (),
            location=location)
        raw_date = self.date(cells)
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

    def _address(self, cells: list[str]) -> str | None:
        street = self.street(cells)
        if not self.has_city:
            return street or None
        region = " ".join(p for p in (self.state(cells), self.zip(cells)) if p)
        return ", ".join(p for p in (street, self.city(cells), region) if p) or None
