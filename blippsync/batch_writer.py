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
    MOBILE,
    OTHER,
    PRIMARY,
    Problem,
    normalize_name,
    normalize_phone,
    normalize_tags,
    split_emails,
    split_phones,
)
from blippsync.records import (
    CustomerMerge,
    CustomerRecord,
    EventRecord,
    Note,
    Rejected,
    SubscriptionStatus,
)
from blippsync.sqlfiles import load

_SQL = load("batch")
_CUSTOMER_COLUMNS = ("seq", "new_id", "external_id", "name", "email", "phone", "mobile", "phones",
                     "other_emails", "address", "tags", "archived", "deleted", "review_ok",
                     "sms_allowed", "email_seen", "parent_external_id", "label")
_FIRST_VALUE = _CUSTOMER_COLUMNS.index("name")  # seq, new_id, external_id come before
_EMAIL_SEEN = _CUSTOMER_COLUMNS.index("email_seen")
_MERGEABLE = range(_FIRST_VALUE, _EMAIL_SEEN)  # name .. sms_allowed
_JSON_LISTS = (_CUSTOMER_COLUMNS.index("phones"), _CUSTOMER_COLUMNS.index("other_emails"),
               _CUSTOMER_COLUMNS.index("tags"))
_EVENT_COLUMNS = ("id", "event_type", "dedupe_key", "external_customer_id", "occurred_at",
                  "payload", "historical")
# every batch starts with these, sent together: each round trip waits for this thread to
# get the interpreter back from the thread parsing the next batch (up to 5 ms)
_PREPARE = "\n;\n".join(str(_SQL[step]) for step in (
    "create_customer_stage", "index_stage_seq", "index_stage_email", "create_event_stage",
    "clear_stages", "no_hash_joins", "no_merge_joins", "no_jit"))
_SITE_STEPS = ("resolve_sites", "file_sites")  # only for a batch that has sites
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
    conflicts: int = 0  # emails newly held back (an email another customer has)
    emitted: int = 0
    historical: int = 0
    duplicate: int = 0
    merged: int = 0
    joined: int = 0  # records that reach another customer through a shared email
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
    sites: int = 0  # sub-customer records in the batch
    email_repeats: bool = False  # some email came under two ids

    def __len__(self) -> int:
        return len(self.customers) + len(self.events) + len(self.merges) + len(self.statuses)

    def add_customer(self, record: CustomerRecord, country: str) -> None:
        external_id = (record.external_id or "").strip()
        if not external_id:
            self.reject(Rejected("a customer record has no external id", record.location))
            return
        parent = (record.parent_external_id or "").strip()
        if parent and parent != external_id:
            self._add_site(record, external_id, parent)
            return
        emails = self._emails(record, external_id)
        email = emails[0] if emails else None
        phone, mobile, phones = self._phones(record, external_id, country)
        name = normalize_name(record.name)
        if not (name or email or phone) and (record.email or record.phone or record.mobile) \
                and not record.deleted:
            self.reject(Rejected("no name, and no valid email or phone: not imported",
                                 record.location))
            return
        tags = normalize_tags(record.tags)
        # an email already used in this batch under another id: the database decides whether
        # that is one customer or a clash; every other row skips that check
        first_owner = self._email_owners.setdefault(email, external_id) if email else external_id
        self.email_repeats = self.email_repeats or first_owner != external_id
        self._stage(external_id, [
            name, email, phone, mobile, phones, json.dumps(emails[1:]) if len(emails) > 1 else None,
            normalize_name(record.address), json.dumps(tags) if tags else None,
            record.archived, record.deleted, record.review_requests_allowed, record.sms_allowed,
            first_owner != external_id, None, None])

    def _add_site(self, record: CustomerRecord, external_id: str, parent: str) -> None:
        """A sub-customer: nothing of it reaches the parent's contact details; its name
        labels the events it brings."""
        self.sites += 1
        self._stage(external_id, [None, None, None, None, None, None, None, None, None,
                                  False, None, None, False, parent,
                                  normalize_name(record.name)])

    def _stage(self, external_id: str, values: list[Any]) -> None:
        """Stage a row; a second record of the same id in the batch fills in what it does
        not say from the first (a later row's blank cell never erases a value)."""
        self._seq += 1
        earlier = self.customers.get(external_id)
        if earlier is not None:
            for i in _MERGEABLE:
                v = i - _FIRST_VALUE
                if values[v] is None:
                    values[v] = earlier[i]
                elif i in _JSON_LISTS and earlier[i] is not None:
                    old, new = json.loads(earlier[i]), json.loads(values[v])
                    values[v] = json.dumps(old + [x for x in new if x not in old])
            seen = _EMAIL_SEEN - _FIRST_VALUE  # goes with the email
            values[seen] = values[seen] or earlier[_EMAIL_SEEN]
        self.customers[external_id] = (self._seq, uuid7(), external_id, *values)

    def _emails(self, record: CustomerRecord, external_id: str) -> list[str]:
        found, problems = split_emails(record.email)
        for more in record.emails:
            extra, extra_problems = split_emails(more)
            found += [e for e in extra if e not in found]
            problems += extra_problems
        for problem in problems:
            self._problem(problem, record.location, external_id)
        return found

    def _phones(self, record: CustomerRecord, external_id: str, country: str
                ) -> tuple[str | None, str | None, str | None]:
        """(primary, mobile, every number as JSON): the first primary number (else another
        landline, else the mobile; never a fax), the first mobile, and all of them with
        their kind, in the order the source gives them."""
        raw = split_phones(record.phone, PRIMARY) + split_phones(record.mobile, MOBILE)
        for more in record.phones:
            raw += split_phones(more, OTHER)
        if not raw:
            return None, None, None
        numbers: list[tuple[str, str]] = []
        for text, kind in raw:
            e164, problem = normalize_phone(text, country)
            if problem is not None:
                self._problem(problem, record.location, external_id)
            elif e164 is not None and all(n != e164 for n, _ in numbers):
                numbers.append((e164, kind))
        if not numbers:
            return None, None, None
        if len(numbers) == 1 and numbers[0][1] != "fax":  # the common case, no json.dumps
            e164, kind = numbers[0]
            return (e164, e164 if kind == MOBILE else None,
                    f'[{{"number": "{e164}", "kind": "{kind}"}}]')
        mobile = next((n for n, k in numbers if k == MOBILE), None)
        primary = next((n for n, k in numbers if k == PRIMARY), None) or \
            next((n for n, k in numbers if k == OTHER), None) or mobile
        return primary, mobile, json.dumps([{"number": n, "kind": k} for n, k in numbers])

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
        self.events.append((uuid7(), record.event_type, record.dedupe_key,
                            record.customer_external_id, record.occurred_at,
                            json.dumps(payload, default=str), historical))

    def note(self, note: Note) -> None:
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append({"kind": "note", "reason": note.message,
                                  "location": note.location, "field": note.field,
                                  **({"data": dict(note.data)} if note.data else {})})

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

    def add_identity_event(self, event: dict[str, Any]) -> None:
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(event)

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
    driver_connection(conn).execute(_PREPARE)  # one round trip; no parameters
    if batch.customers:
        _copy(conn, "blipp_stage_customers", _CUSTOMER_COLUMNS, batch.customers.values())
        released, shared = _resolve(conn, params, batch)
        if batch.sites:
            counts.rejected += _settle_sites(conn, target, batch)
        conn.execute(_SQL["insert_new_customers"], params)
        if released:
            conn.execute(_SQL["forget_released_identities"], params)
        counts.updated = conn.execute(_SQL["update_changed_customers"], params).rowcount
        if shared:
            conn.execute(_SQL["fill_from_shared_records"], params)
        conn.execute(_SQL["insert_aliases"], params)
        _report_identities(conn, params, batch, counts, shared)
        row = conn.execute(_SQL["count_customers"]).one()
        counts.created = row.created
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


def _resolve(conn: sa.Connection, params: Mapping[str, Any], batch: Batch
             ) -> tuple[bool, bool]:
    """The resolution steps of sql/batch.sql, in order. Each is a round trip and a pass over
    the staged rows, so a step runs only when an earlier one left it something to do (a
    first import runs three lookups, not eleven): returns
    (some record was released, some record may share another's email)."""
    def run(step: str) -> int:
        return conn.execute(_SQL[step], params).rowcount

    keyed = run("resolve_by_key")
    aliased = run("resolve_by_alias")  # aliases include sites and sharers
    released = bool(aliased) and run("release_former_sharers") > 0
    held = run("find_email_holders")  # the only source of email_holder
    by_email = held and run("resolve_by_email")
    if by_email:
        run("later_email_matches_share")
    # conflict_with is only for rows resolved to a customer, and mark_email_conflicts only
    # reads conflict_with and email_holder: a first import skips all three
    conflicts = (keyed or aliased or by_email) and run("find_email_conflicts")
    if conflicts or held:
        run("mark_email_conflicts")
    joined = batch.email_repeats and run("join_shared_in_batch") > 0
    if batch.email_repeats:  # the only rows with email_seen
        run("find_email_conflicts_in_batch")
    for step in _SITE_STEPS if batch.sites else ():
        run(step)
    return released, bool(aliased or held or joined)


def _settle_sites(conn: sa.Connection, target: BatchTarget, batch: Batch) -> int:
    """Sites whose parent is unknown are reported and dropped (their number is returned);
    a site once stored as a customer of its own is merged into its parent's customer."""
    dropped = 0
    for row in conn.execute(_SQL["unresolved_sites"]):
        dropped += 1
        batch.reject(Rejected(f"sub-customer {row.label or row.external_id!r} names parent "
                              f"{row.parent_external_id}, which is not known: not imported",
                              f"{target.source} customer {row.external_id}"))
    for row in conn.execute(_SQL["legacy_sites"]).all():
        merge_customers(conn, target.business_id, row.customer_id, row.own_id)
    return dropped


def _report_identities(conn: sa.Connection, params: Mapping[str, Any], batch: Batch,
                       counts: BatchCounts, shared: bool) -> None:
    """Joins by shared email and held-back emails, into the store and the run's report."""
    for row in conn.execute(_SQL["record_shared_email_merges"], params) if shared else ():
        counts.joined += 1
        batch.add_identity_event({"kind": "merged", "external_id": row.external_id,
                                  "customer_id": str(row.customer_id), "field": "email",
                                  "value": row.value,
                                  "reason": "shares this email with another record; both "
                                            "reach one customer"})
    for row in conn.execute(_SQL["record_email_conflicts"], params):
        counts.conflicts += 1
        batch.add_identity_event({"kind": "conflict", "external_id": row.external_id,
                                  "customer_id": str(row.customer_id),
                                  "conflicting_customer_id": str(row.conflicting_customer_id),
                                  "field": "email", "value": row.value,
                                  "reason": "the email already belongs to another customer; "
                                            "kept on that customer"})


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
