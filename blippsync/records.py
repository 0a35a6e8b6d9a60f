"""What a connector yields: the records the core turns into rows.

Connectors are pure producers: they never touch the database. The sync engine writes
customers, events and the checkpoint that covers them in one transaction, so a record
yielded after the last checkpoint may be produced again after a crash (writes are
idempotent, so that is harmless) and a record before it never needs to be.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# JSON objects: a connector's own cursor and an event's payload. Their shape belongs to the
# connector, so the core only requires that json.dumps accepts them.
Cursor = Mapping[str, Any]
Payload = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """One customer as the source knows it. Fields left None are left unchanged.

    `email` and `phone` may hold several values as the source wrote them ("a@x.com,
    b@y.com", "Phone: ... Mobile: ..."); the core splits them. The first address is the
    customer's email, the first number their phone, a mobile number (`mobile`, or one
    labelled so) is where SMS goes, and every further value is kept (`emails`, `phones`).
    A record with `parent_external_id` is a sub-customer or job site of that customer
    (QuickBooks `ParentRef`): it becomes part of the parent, never a customer to contact.
    """

    external_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    mobile: str | None = None
    emails: tuple[str, ...] = ()  # further addresses
    phones: tuple[str, ...] = ()  # further numbers (home, work, other)
    parent_external_id: str | None = None
    address: str | None = None
    tags: tuple[str, ...] = ()
    archived: bool | None = None  # inactive at the source (QuickBooks Active=false...)
    deleted: bool = False  # deleted at the source
    review_requests_allowed: bool | None = None  # the source's own "don't ask" flag
    sms_allowed: bool | None = None
    location: str | None = None  # where it came from, for error reports ("file.csv:12")


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A trigger event: one real business fact, identified by `dedupe_key`.

    `dedupe_key` must name the fact, not the observation (for example
    `quickbooks:<realm>:invoice:<id>:paid`), so seeing it twice stores it once.
    """

    event_type: str
    dedupe_key: str
    customer_external_id: str
    occurred_at: datetime  # timezone-aware
    payload: Payload = field(default_factory=dict)
    contact_email: str | None = None  # preferred address for this fact (an invoice's BillEmail)
    location: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerMerge:
    """The source merged `merged_external_id` into `survivor_external_id`."""

    survivor_external_id: str
    merged_external_id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input the connector could not use: reported with where and why, nothing else stops."""

    reason: str
    location: str | None = None  # "customers.csv:12"
    field: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Something the operator should know that rejects nothing: the columns a file mapped,
    a cell set aside, a report footer skipped. Shown in the import/sync summary."""

    message: str
    location: str | None = None
    field: str | None = None
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionStatus:
    """The connection's business is billed under this status as of `as_of` (a billing
    connector, such as Stripe, yields it). The core stores it on
    businesses.subscription_status unless a status with a later `as_of` is already stored,
    so retried and reordered deliveries never move the status back in time.

    `status` is one of `blippsync.billing.SUBSCRIPTION_STATUSES` (Stripe's own names).
    """

    status: str
    as_of: datetime  # timezone-aware: the billing event's time, or when a listing was read
    subscription_id: str | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Everything yielded so far is covered by `cursor`; the core stores it with those records.

    The cursor must be JSON-serialisable; it comes back as `ConnectorContext.cursor` on the
    next run.
    """

    cursor: Cursor


Record = (CustomerRecord | EventRecord | CustomerMerge | Rejected | Note | SubscriptionStatus
          | Checkpoint)
