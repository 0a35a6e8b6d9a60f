"""Routing trigger events into enrollments, recording every decision with its reason.

Each batch is one short transaction: claim pending events (FOR UPDATE SKIP LOCKED, so
several daemons share the queue), load what the rules need in a handful of set-based
queries, decide in Python, then write enrollments, decisions (COPY) and the events' new
state together. A crash anywhere rolls the batch back to pending.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from blippsync.config import Config
from blippsync.database import Database, driver_connection
from blippsync.journeys import queries as q
from blippsync.journeys.rules import (
    ENROLLED,
    HELD_STATUSES,
    REASONS,
    SKIPPED,
    CustomerFacts,
    History,
    SequenceFacts,
    decide,
)
from blippsync.tenancy import REASON as CROSS_TENANT
from blippsync.tenancy import refuse_cross_tenant

MERGE_HOPS_MAX = 5


@dataclass(frozen=True)
class RoutingSummary:
    events: int = 0
    enrolled: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    historical: int = 0

    def __add__(self, other: RoutingSummary) -> RoutingSummary:
        return RoutingSummary(self.events + other.events, self.enrolled + other.enrolled,
                              dict(Counter(self.skipped) + Counter(other.skipped)),
                              self.historical + other.historical)


@dataclass(slots=True)
class _Decision:
    business_id: uuid.UUID
    event_id: uuid.UUID
    customer_id: uuid.UUID | None
    sequence_id: uuid.UUID | None
    enrollment_id: uuid.UUID | None
    decision: str
    reason: str
    detail: str | None = None


def route_events(db: Database, config: Config, *, batch_size: int | None = None,
                 now: datetime | None = None, max_batches: int | None = None) -> RoutingSummary:
    """Route pending events until none are left (or max_batches); return what happened."""
    size = batch_size or config["journeys.route_batch_size"]
    total = RoutingSummary()
    batches = 0
    while max_batches is None or batches < max_batches:
        at = now or datetime.now(UTC)
        with db.begin() as conn:
            summary = _route_batch(conn, config, size, at)
        batches += 1
        total = total + summary
        if summary.events < size:
            break
    return total


def _route_batch(conn: sa.Connection, config: Config, size: int, now: datetime) -> RoutingSummary:
    events = conn.execute(q.CLAIM_EVENTS, {"limit": size, "held": list(HELD_STATUSES)}).all()
    if not events:
        return RoutingSummary()
    customers = _load_customers(conn, {e.customer_id for e in events if e.customer_id})
    business_ids = list({e.business_id for e in events})
    subscription: dict[uuid.UUID, str] = dict(
        conn.execute(q.BUSINESS_STATUS, {"ids": business_ids}).all())
    sequences: dict[tuple[uuid.UUID, str, str], list[Any]] = {}
    for s in conn.execute(q.ACTIVE_SEQUENCES, {"ids": business_ids}):
        sequences.setdefault((s.business_id, s.trigger_source, s.trigger_event_type), []).append(s)
    live = {c.id for c in customers.values()}
    history = _load_history(conn, live, now - timedelta(days=config["journeys.review_cap_days"]))
    cap_days = config["journeys.review_cap_days"]
    default_cooldown = config["journeys.cooldown_days"]

    decisions: list[_Decision] = []
    enroll_rows: list[tuple[Any, ...]] = []
    historical: list[uuid.UUID] = []
    for event in events:
        base = dict(business_id=event.business_id, event_id=event.id)
        if event.historical:
            historical.append(event.id)
            decisions.append(_Decision(**base, customer_id=event.customer_id, sequence_id=None,
                                       enrollment_id=None, decision=SKIPPED, reason="historical"))
            continue
        customer = customers.get(event.customer_id) if event.customer_id else None
        if customer is not None and customer.business_id != event.business_id:
            refuse_cross_tenant(conn, table="trigger_events", column="customer_id",
                                row_id=event.id, business_id=event.business_id,
                                referenced_id=customer.id,
                                referenced_business=customer.business_id, found_by="routing")
            decisions.append(_Decision(**base, customer_id=None, sequence_id=None,
                                       enrollment_id=None, decision=SKIPPED,
                                       reason=CROSS_TENANT))
            continue
        if customer is None:
            decisions.append(_Decision(**base, customer_id=None, sequence_id=None,
                                       enrollment_id=None, decision=SKIPPED,
                                       reason="unknown_customer",
                                       detail=f"external id {event.external_customer_id!r}"
                                       if event.external_customer_id else None))
            continue
        matches = sequences.get((event.business_id, event.source, event.event_type), [])
        if not matches:
            decisions.append(_Decision(**base, customer_id=customer.id, sequence_id=None,
                                       enrollment_id=None, decision=SKIPPED,
                                       reason="no_active_sequence",
                                       detail=f"{event.source}/{event.event_type}"))
            continue
        facts = CustomerFacts(opted_out=customer.opted_out, archived=customer.archived,
                              deleted=customer.deleted_at is not None,
                              review_requests_allowed=customer.review_requests_allowed,
                              email_opted_out=customer.email_opted_out)
        mine = history.setdefault(customer.id, _CustomerHistory())
        for seq in matches:
            settings = seq.settings or {}
            seq_facts = SequenceFacts(
                cooldown_days=int(settings.get("cooldown_days", default_cooldown)),
                asks_review=seq.asks_review, review_cap=bool(settings.get("review_cap", True)),
                channels=frozenset(seq.channels or ()))
            verdict, reason = decide(
                subscription_status=subscription.get(event.business_id, "canceled"),
                customer=facts, sequence=seq_facts, history=mine.view(seq.id), now=now,
                review_cap_days=cap_days)
            enrollment_id = uuid.uuid4() if verdict == ENROLLED else None
            if enrollment_id is not None:
                mine.enrolled(seq.id, now, seq.asks_review)
                next_at = now + timedelta(minutes=seq.first_delay or 0)
                meta = {"trigger_event_id": str(event.id)}
                if customer.id != event.customer_id:
                    meta["merged_from"] = str(event.customer_id)
                enroll_rows.append((enrollment_id, seq.id, customer.id, now, next_at,
                                    json.dumps(meta)))
            decisions.append(_Decision(**base, customer_id=customer.id, sequence_id=seq.id,
                                       enrollment_id=enrollment_id, decision=verdict,
                                       reason=reason))
    _write(conn, enroll_rows, decisions, events, historical, now)
    skipped = Counter(d.reason for d in decisions if d.decision == SKIPPED)
    return RoutingSummary(events=len(events),
                          enrolled=sum(d.decision == ENROLLED for d in decisions),
                          skipped=dict(skipped), historical=len(historical))


def _write(conn: sa.Connection, enroll_rows: list[tuple[Any, ...]], decisions: list[_Decision],
           events: Sequence[Any], historical: list[uuid.UUID], now: datetime) -> None:
    raw = driver_connection(conn)
    if enroll_rows:
        columns = [list(c) for c in zip(*enroll_rows, strict=True)]
        with raw.cursor() as cur:
            cur.execute(q.INSERT_ENROLLMENTS, columns, binary=True)
            inserted = {row[0] for row in cur.fetchall()}
        lost = {row[0] for row in enroll_rows} - inserted
        for d in decisions:  # a concurrent router enrolled the same customer first
            if d.enrollment_id in lost:
                d.enrollment_id, d.decision, d.reason = None, SKIPPED, "already_active"
    with raw.cursor() as cur, cur.copy(q.COPY_DECISIONS) as copy:
        for d in decisions:
            copy.write_row((d.business_id, d.event_id, d.customer_id, d.sequence_id,
                            d.enrollment_id, d.decision, d.reason,
                            d.detail or REASONS.get(d.reason), now))
    with raw.cursor() as cur:
        cur.execute(q.MARK_ROUTED, [historical, now, [e.id for e in events]], binary=True)


def _load_customers(conn: sa.Connection, ids: set[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Customers by the id an event names, following merges to the survivor."""
    found = {r.id: r for r in conn.execute(q.CUSTOMERS, {"ids": list(ids)})} if ids else {}
    resolved = dict(found)
    for _ in range(MERGE_HOPS_MAX):
        pending = {k: r.merged_into_id for k, r in resolved.items() if r.merged_into_id}
        if not pending:
            break
        missing = [v for v in set(pending.values()) if v not in found]
        if missing:
            found.update({r.id: r for r in conn.execute(q.CUSTOMERS, {"ids": missing})})
        for key, target in pending.items():
            if target in found:
                resolved[key] = found[target]
            else:
                del resolved[key]
    return resolved


class _CustomerHistory:
    """Enrollment and review-ask history of one customer, updated as the batch enrolls."""

    __slots__ = ("sequences", "review_active", "last_review_ask")

    def __init__(self) -> None:
        self.sequences: dict[uuid.UUID, tuple[bool, datetime | None]] = {}
        self.review_active: set[uuid.UUID] = set()
        self.last_review_ask: datetime | None = None

    def view(self, sequence_id: uuid.UUID) -> History:
        active, last = self.sequences.get(sequence_id, (False, None))
        return History(active_here=active, last_enrolled_here=last,
                       review_pending_elsewhere=bool(self.review_active - {sequence_id}),
                       last_review_ask=self.last_review_ask)

    def enrolled(self, sequence_id: uuid.UUID, at: datetime, asks_review: bool) -> None:
        self.sequences[sequence_id] = (True, at)
        if asks_review:
            self.review_active.add(sequence_id)


def _load_history(conn: sa.Connection, customer_ids: set[uuid.UUID],
                  review_since: datetime) -> dict[uuid.UUID, _CustomerHistory]:
    history: dict[uuid.UUID, _CustomerHistory] = {}
    if not customer_ids:
        return history
    ids = list(customer_ids)
    for row in conn.execute(q.ENROLLMENT_HISTORY, {"ids": ids}):
        h = history.setdefault(row.customer_id, _CustomerHistory())
        h.sequences[row.sequence_id] = (bool(row.active), row.last_enrolled)
        if row.active and row.asks_review:
            h.review_active.add(row.sequence_id)
    for row in conn.execute(q.RECENT_REVIEW_ASKS, {"ids": ids, "since": review_since}):
        history.setdefault(row.customer_id, _CustomerHistory()).last_review_ask = row.last_ask
    return history
