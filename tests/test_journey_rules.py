"""The rule table: every reason an event does or does not enroll a customer, each asserted
on the decision recorded in enrollment_decisions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from journey_support import (
    add_event,
    apply,
    journey_config,
    make_business,
    make_customer,
    noon_utc,
    rows,
    sequence,
)

from blippsync.database import Database
from blippsync.journeys import route_events

NOW = noon_utc()


def _sql(db: Database, statement: str, **params: Any) -> None:
    with db.begin() as conn:
        conn.execute(sa.text(statement), params)


def _past_enrollment(db: Database, sequence_id: Any, customer_id: Any, days_ago: int) -> Any:
    with db.begin() as conn:
        return conn.execute(sa.text(
            "INSERT INTO public.customer_enrollments (sequence_id, customer_id, status, "
            "enrolled_at, current_step) VALUES (:s, :c, 'completed', :at, 2) RETURNING id"),
            {"s": sequence_id, "c": customer_id, "at": NOW - timedelta(days=days_ago)}
        ).scalar_one()


def _setup(case: str, db: Database) -> tuple[list[Any], Any]:
    """Build the situation for one case; return the events to route and the customer."""
    business = make_business(db, subscription_status="canceled"
                             if case == "subscription_inactive" else "active")
    flags = {"customer_deleted": {"deleted_at": NOW}, "customer_archived": {"archived": True},
             "customer_opted_out": {"opted_out": True},
             "review_requests_not_allowed": {"review_requests_allowed": False}}.get(case, {})
    customer = make_customer(db, business, **flags)
    seq_id, other_id = apply(db, business, sequence("Review ask"),
                             sequence("Invoice review", trigger_event_type="invoice_paid"))
    if case == "unknown_customer":
        return [add_event(db, business, None)], None
    if case == "no_active_sequence":
        return [add_event(db, business, customer, event_type="estimate_sent")], customer
    if case == "historical":
        return [add_event(db, business, customer, historical=True)], customer
    if case == "already_active":
        return [add_event(db, business, customer), add_event(db, business, customer)], customer
    if case == "cooldown":
        _past_enrollment(db, seq_id, customer, days_ago=100)  # default cooldown: 180 days
    if case == "review_cap":
        enrollment = _past_enrollment(db, other_id, customer, days_ago=200)
        _sql(db, "INSERT INTO public.review_requests (business_id, customer_id, enrollment_id, "
                 "status, channel, purpose, sent_at, created_at) VALUES (:b, :c, :e, 'sent', "
                 "'email', 'review', :at, :at)",
             b=business, c=customer, e=enrollment, at=NOW - timedelta(days=30))
    return [add_event(db, business, customer)], customer


CASES = ["enrolled", "subscription_inactive", "customer_deleted", "customer_archived",
         "customer_opted_out", "review_requests_not_allowed", "already_active", "cooldown",
         "review_cap", "unknown_customer", "no_active_sequence", "historical"]


@pytest.mark.parametrize("case", CASES)
def test_each_rule_records_its_decision(case: str, db: Database, database_url: str,
                                        tmp_path: Path) -> None:
    events, customer = _setup(case, db)
    summary = route_events(db, journey_config(tmp_path, database_url), now=NOW)

    assert summary.events == len(events)
    decisions = rows(db, "SELECT decision, reason, detail, trigger_event_id, customer_id "
                         "FROM public.enrollment_decisions ORDER BY created_at, decision")
    last = [d for d in decisions if d.trigger_event_id == events[-1]]
    assert len(last) == 1, decisions
    expected = "enrolled" if case == "enrolled" else "skipped"
    assert (last[0].decision, last[0].reason) == (expected, case)
    assert last[0].detail  # a sentence for people, not just a code
    if case in ("enrolled", "already_active"):
        assert summary.enrolled == 1
    else:
        assert summary.enrolled == 0 and summary.skipped == {case: 1}
    states = {r.routing_state for r in rows(db, "SELECT routing_state FROM public.trigger_events")}
    assert states == {"historical" if case == "historical" else "routed"}
    active = rows(db, "SELECT count(*) AS n FROM public.customer_enrollments "
                      "WHERE status = 'active'")[0].n
    assert active == (1 if case in ("enrolled", "already_active") else 0)


def test_cooldown_and_cap_expire(db: Database, database_url: str, tmp_path: Path) -> None:
    """Outside the cooldown (180 d) and the review cap (90 d) the customer enrolls again."""
    business = make_business(db)
    customer = make_customer(db, business)
    seq_id, = apply(db, business, sequence("Review ask"))
    _past_enrollment(db, seq_id, customer, days_ago=181)
    add_event(db, business, customer)
    summary = route_events(db, journey_config(tmp_path, database_url), now=NOW)
    assert summary.enrolled == 1


def test_sequence_cooldown_setting_and_same_batch_duplicates(db: Database, database_url: str,
                                                             tmp_path: Path) -> None:
    business = make_business(db)
    customer = make_customer(db, business)
    seq_id, = apply(db, business, sequence("Short cooldown", settings={"cooldown_days": 7}))
    _past_enrollment(db, seq_id, customer, days_ago=8)
    for _ in range(3):  # three events for one customer in one batch: enrolled once
        add_event(db, business, customer)
    summary = route_events(db, journey_config(tmp_path, database_url), now=NOW)
    assert summary.enrolled == 1 and summary.skipped == {"already_active": 2}


def test_two_review_sequences_on_one_event_respect_the_cap(db: Database, database_url: str,
                                                           tmp_path: Path) -> None:
    business = make_business(db)
    customer = make_customer(db, business)
    apply(db, business, sequence("First"), sequence("Second"))
    add_event(db, business, customer)
    summary = route_events(db, journey_config(tmp_path, database_url), now=NOW)
    assert summary.enrolled == 1 and summary.skipped == {"review_cap": 1}


def test_merged_customer_events_enroll_the_survivor(db: Database, database_url: str,
                                                    tmp_path: Path) -> None:
    business = make_business(db)
    survivor = make_customer(db, business)
    merged = make_customer(db, business)
    _sql(db, "UPDATE public.customers SET merged_into_id = :s WHERE id = :m", s=survivor, m=merged)
    apply(db, business, sequence())
    add_event(db, business, merged)
    route_events(db, journey_config(tmp_path, database_url), now=NOW)
    enrolled = rows(db, "SELECT customer_id FROM public.customer_enrollments")
    assert [r.customer_id for r in enrolled] == [survivor]
