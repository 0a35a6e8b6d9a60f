"""Writing one batch of records in one transaction: customers, events, merges, cursor.

Customers are normalised here, staged with COPY and merged set-wise (see sql/batch.sql);
events are inserted once per dedupe key. Because the cursor that covers a batch commits
with it, a crash at any instant leaves either the whole batch or none of it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from blippsync.billing import SUBSCRIPTION_STATUSES, apply_statuses
from blippsync.customers import customer_for, merge_customers
from blippsync.database import driver_connection
from blippsync.ids import uuid7
from blippsync.normalize import (
    Problem,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_tags,
)
from blippsync.records import (
    CustomerMerge,
    CustomerRecord,
    EventRecord,
    Rejected,
    SubscriptionStatus,
)
from blippsync.sqlfiles import load

_SQL = load("batch")
_CUSTOMER_COLUMNS = ("seq", "new_id", "external_id", "name", "email", "phone", "address", "tags",
                     "archived", "deleted", "review_ok", "sms_allowed", "email_seen")
_EVENT_COLUMNS = ("event_type", "dedupe_key", "external_customer_id", "occurred_at", "payload",
                  "historical")
_PREPARE_STEPS = ("create_customer_stage", "index_stage_seq", "index_stage_email",
                  "create_event_stage", "clear_stages",
                  "no_hash_joins", "no_merge_joins")
_MERGE_STEPS = ("resolve_by_key", "resolve_by_alias", "find_email_holders", "resolve_by_email",
                "unmatch_email_duplicates", "find_email_conflicts", "mark_email_conflicts",
                "find_email_conflicts_in_batch",
                "insert_new_customers")
MAX_REPORTED_PROBLEMS = 1000
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class BatchTarget:
    """Where a batch goes: fixed for a whole sync."""

    business_id: uuid.UUID
    source: str
    connection_id: uuid.UUID | None
    run_id: uuid.UUID | None
    country: str
    horizon: timedelta
    now: datetime


@dataclass
class BatchCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    conflicts: int = 0
    emitted: int = 0
    historical: int = 0
    duplicate: int = 0
    merged: int = 0
    billing: int = 0  # the business's subscription status changed

    def add(self, other: BatchCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Batch:
    """Records gathered since the last flush; a later record for the same id wins."""

    customers: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    merges: list[CustomerMerge] = field(default_factory=list)
    statuses: list[SubscriptionStatus] = field(default_factory=list)
    rejected: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    _seq: int = 0  # staging order: a later record of the same id replaces the earlier one
    _email_owners: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.customers) + len(self.events) + len(self.merges) + len(self.statuses)

    def add_customer(self, record: CustomerRecord, country: str) -> None:
        external_id = (record.external_id or "").strip()
        if not external_id:
            self.reject(Rejected("a customer record has no external id", record.location))
            return
        email, email_problem = normalize_email(record.email)
        phone, phone_problem = normalize_phone(record.phone, country)
        for problem in (email_problem, phone_problem):
            if problem is not None:
                self._problem(problem, record.location, external_id)
        tags = normalize_tags(record.tags)
        # an email already used in this batch under another id: the database decides whether
        # that is one customer or a clash; every other row skips that check
        first_owner = self._email_owners.setdefault(email, external_id) if email else external_id
        self._seq += 1
        self.customers[external_id] = (
            self._seq, uuid7(), external_id, normalize_name(record.name), email, phone,
            normalize_name(record.address), json.dumps(tags) if tags else None,
            record.archived, record.deleted, record.review_requests_allowed, record.sms_allowed,
            first_owner != external_id)

    def add_event(self, record: EventRecord, target: BatchTarget) -> None:
        if record.occurred_at.tzinfo is None:
            self.reject(Rejected(f"event {record.dedupe_key}: occurred_at has no time zone",
                                 record.location, "occurred_at"))
            return
        if not EVENT_TYPE.match(record.event_type or ""):
            self.reject(Rejected(f"event type {record.event_type!r} must be lower-case letters, "
                                 "digits and _", record.location, "event_type"))
            return
        if not record.dedupe_key or not record.customer_external_id:
            self.reject(Rejected("an event needs a dedupe key and a customer id",
                                 record.location))
            return
        payload = dict(record.payload)
        if record.contact_email:
            payload.setdefault("contact_email", record.contact_email)
        historical = record.occurred_at < target.now - target.horizon
        self.events.append((record.event_type, record.dedupe_key, record.customer_external_id,
                            record.occurred_at, json.dumps(payload, default=str), historical))

    def add_status(self, record: SubscriptionStatus) -> None:
        if record.status not in SUBSCRIPTION_STATUSES:
            self.reject(Rejected(f"subscription status {record.status!r} is not one of "
                                 f"{', '.join(sorted(SUBSCRIPTION_STATUSES))}", record.location,
                                 "status", record.status))
        elif record.as_of.tzinfo is None:
            self.reject(Rejected("a subscription status's as_of has no time zone",
                                 record.location, "as_of"))
        else:
            self.statuses.append(record)

    def reject(self, rejected: Rejected) -> None:
        self.rejected += 1
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append({"kind": "rejected", "reason": rejected.reason,
                                  "location": rejected.location, "field": rejected.field,
                                  "value": rejected.value})

    def _problem(self, problem: Problem, location: str | None, external_id: str) -> None:
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append({"kind": "ignored_value", "reason": problem.reason,
                                  "location": location, "field": problem.field,
                                  "value": problem.value, "external_id": external_id})


def write_batch(conn: sa.Connection, target: BatchTarget, batch: Batch,
                cursor: Mapping[str, Any] | None) -> BatchCounts:
    """Write the batch (and the cursor, when given) inside the caller's transaction."""
    params = {"business_id": target.business_id, "source": target.source,
              "connection_id": target.connection_id, "run_id": target.run_id}
    counts = BatchCounts(rejected=batch.rejected)
    for step in _PREPARE_STEPS:
        conn.execute(_SQL[step])
    if batch.customers:
        _copy(conn, "blipp_stage_customers", _CUSTOMER_COLUMNS, batch.customers.values())
        for step in _MERGE_STEPS:
            conn.execute(_SQL[step], params)
        counts.updated = conn.execute(_SQL["update_changed_customers"], params).rowcount
        conn.execute(_SQL["insert_aliases"], params)
        conn.execute(_SQL["record_email_conflicts"], params)
        row = conn.execute(_SQL["count_customers"]).one()
        counts.created, counts.conflicts = row.created, row.conflicts
        counts.unchanged = row.existing - counts.updated
    for merge in batch.merges:
        counts.merged += _merge(conn, target, merge)
    if batch.events:
        _copy(conn, "blipp_stage_events", _EVENT_COLUMNS, batch.events)
        row = conn.execute(_SQL["insert_events"], params).one()
        counts.emitted, counts.historical = row.emitted, row.historical
        counts.duplicate = len(batch.events) - row.emitted - row.historical
    counts.billing = apply_statuses(conn, target.business_id, batch.statuses)
    if cursor is not None and target.connection_id is not None:
        conn.execute(_SQL["store_cursor"], {"cursor": json.dumps(cursor, default=str),
                                            "connection_id": target.connection_id})
    if target.run_id is not None:
        conn.execute(_SQL["add_run_counts"], {
            "run_id": target.run_id, "created": counts.created, "updated": counts.updated,
            "unchanged": counts.unchanged, "rejected": counts.rejected,
            "emitted": counts.emitted, "historical": counts.historical,
            "duplicate": counts.duplicate})
    return counts


def _copy(conn: sa.Connection, table: str, columns: tuple[str, ...], rows: Any) -> None:
    cursor = driver_connection(conn).cursor()
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _merge(conn: sa.Connection, target: BatchTarget, merge: CustomerMerge) -> int:
    survivor = customer_for(conn, target.business_id, target.source, merge.survivor_external_id)
    merged = customer_for(conn, target.business_id, target.source, merge.merged_external_id)
    if survivor is None or merged is None:
        return 0
    merge_customers(conn, target.business_id, survivor, merged)
    return 1
