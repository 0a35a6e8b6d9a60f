"""Sub-customers to the person to contact: QuickBooks jobs and sites under their parent.

A QuickBooks job or sub-customer is a Customer with `Job: true` and a `ParentRef`, and its
parent may itself be one (up to five levels). The person a review request greets is the
top-level customer, so each sub-customer record names that top-level id as its parent;
the core then files it as a site of that customer, and its invoices reach the parent's
journeys with the site named in the event.

Parents seen in this pass are known; an unseen one is read by id (one request per distinct
parent, rare), and yielded before its children so the core always has it first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from blippsync.records import CustomerRecord
from connectors.quickbooks.mapping import customer_record, parent_id

MAX_LEVELS = 10  # QuickBooks allows 5; more means a cycle or bad data


class CustomerFamily:
    def __init__(self, fetch: Callable[[str], Mapping[str, Any] | None]) -> None:
        self._fetch = fetch
        self._parent: dict[str, str | None] = {}  # id -> its ParentRef, for ids seen

    def records(self, rows: Sequence[Mapping[str, Any]]) -> Iterator[CustomerRecord]:
        """The customer records of a page, sub-customers pointing at their top-level
        customer, preceded by any ancestor that had to be read."""
        for row in rows:
            if row.get("status") != "Deleted":
                self._parent[str(row["Id"])] = parent_id(row)
        for row in rows:
            record = customer_record(row)
            if record.parent_external_id:
                top, fetched = self._top(record.parent_external_id)
                for ancestor in fetched:
                    yield _under(ancestor, top)
                record = _under(record, top)
            yield record

    def _top(self, first: str) -> tuple[str, list[CustomerRecord]]:
        """The top-level ancestor of `first`, and the ancestors read to find it (top first)."""
        current, fetched = first, []
        for _ in range(MAX_LEVELS):
            if current not in self._parent:
                obj = self._fetch(current)
                self._parent[current] = parent_id(obj) if obj else None
                if obj:
                    fetched.append(customer_record(obj))
            above = self._parent[current]
            if not above:
                break
            current = above
        return current, fetched[::-1]


def _under(record: CustomerRecord, top: str) -> CustomerRecord:
    if record.external_id == top:
        return dataclasses.replace(record, parent_external_id=None)
    if record.parent_external_id is None:
        return record
    return dataclasses.replace(record, parent_external_id=top)
