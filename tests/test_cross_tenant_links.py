"""Links between two businesses that predate the same-business keys (migration 0100).

A database at the schema before 0100 gets the links the issue found (an enrollment of A's
sequence for B's customer, A's customer merged into B's, a review request and a trigger
event of A naming B's customer, A's QR code for B's tech). Migrating lists them instead of
failing or rewriting them, and refuses every new one; the daemon then refuses to enroll,
message or merge across businesses, and records why.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
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
    rows,
    sequence,
)

from blippsync.database import Database
from blippsync.journeys import execute_due_steps, route_events
from blippsync.journeys.retention import run_maintenance
from blippsync.migrations import discover, migrate
from blippsync.plugins import load_plugins

LAST_BEFORE_SAME_BUSINESS_KEYS = 99
CROSSING = {("customer_enrollments", "customer_id"), ("customers", "merged_into_id"),
            ("review_requests", "customer_id"), ("trigger_events", "customer_id"),
            ("qr_codes", "tech_id")}


def _migrate_until(db: Database, folder: Path, last: int) -> None:
    folder.mkdir()
    for migration in discover():
        if migration.version <= last:
            shutil.copy(migration.path, folder / migration.path.name)
    migrate(db, folder)


def _one(db: Database, sql: str, **params: Any) -> Any:
    with db.begin() as conn:
        result = conn.execute(sa.text(sql), params)
        return result.scalar() if result.returns_rows else None


def test_existing_cross_tenant_links_are_reported_then_refused_by_the_daemon(
        tmp_path: Path, empty_database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    db = Database(empty_database_url, pool_size=2)
    try:
        _migrate_until(db, tmp_path / "old", LAST_BEFORE_SAME_BUSINESS_KEYS)
        a, b = make_business(db, timezone="UTC"), make_business(db, timezone="UTC")
        seq_a = apply(db, a, sequence(settings={"email_hours": "00:00-24:00"}, steps=[
            {"type": "email", "subject": "Hi {first_name}", "body": "Thanks from {business}"}]))[0]
        cust_b = make_customer(db, b)
        merged_a = make_customer(db, a)
        tech_b = _one(db, "INSERT INTO techs (business_id, name) VALUES (:b, 'Tech of B') "
                          "RETURNING id", b=b)
        enrollment = _one(db, "INSERT INTO customer_enrollments (sequence_id, customer_id, "
                              "next_step_at) VALUES (:s, :c, now() - interval '1 minute') "
                              "RETURNING id", s=seq_a, c=cust_b)
        _one(db, "UPDATE customers SET merged_into_id = :to WHERE id = :id", to=cust_b,
             id=merged_a)
        _one(db, "INSERT INTO review_requests (business_id, customer_id, channel) "
                 "VALUES (:a, :c, 'email')", a=a, c=cust_b)
        kept = _one(db, "INSERT INTO review_requests (business_id, customer_id, channel) "
                        "VALUES (:a, :c, 'email') RETURNING id", a=a, c=merged_a)
        _one(db, "INSERT INTO qr_codes (business_id, code, tech_id) VALUES (:a, 'qr-1', :t)",
             a=a, t=tech_b)
        event = add_event(db, a, cust_b)

        with caplog.at_level(logging.WARNING, "blippsync.migrations"):
            migrate(db)  # reports, does not fail, rewrites nothing
        warned = [r.getMessage() for r in caplog.records if "cross_tenant_links" in r.getMessage()]
        assert len(warned) == len(CROSSING), warned
        assert any(m.startswith("0100_same_business_references.sql: customer_enrollments."
                                "customer_id has 1 reference(s)") for m in warned), warned

        found = {(r.table_name, r.column_name): r for r in rows(
            db, "SELECT * FROM blippsync.cross_tenant_links WHERE found_by = 'migration'")}
        assert set(found) == CROSSING
        link = found[("customer_enrollments", "customer_id")]
        assert (link.row_id, link.business_id, link.referenced_id, link.referenced_business) == (
            enrollment, a, cust_b, b)
        validated = dict(rows(db, "SELECT conname, convalidated FROM pg_constraint "
                                  "WHERE conname LIKE '%same_business'"))
        assert validated["customer_enrollments_customer_id_same_business"] is False
        assert validated["private_feedback_customer_id_same_business"] is True
        assert _one(db, "SELECT business_id FROM customer_enrollments WHERE id = :e",
                    e=enrollment) == a  # taken from its sequence

        # no new crossing, even for the daemon's own role
        with db.begin() as conn:
            savepoint = conn.begin_nested()
            try:
                conn.execute(sa.text("INSERT INTO customer_enrollments (sequence_id, customer_id) "
                                     "VALUES (:s, :c)"), {"s": seq_a, "c": make_customer(db, b)})
                raise AssertionError("a new cross-tenant enrollment was accepted")
            except sa.exc.IntegrityError:
                savepoint.rollback()

        config = journey_config(tmp_path, empty_database_url)
        now = datetime.now(UTC) + timedelta(minutes=1)
        route_events(db, config, now=now)
        assert _one(db, "SELECT reason FROM enrollment_decisions WHERE trigger_event_id = :e",
                    e=event) == "cross_tenant"
        execute_due_steps(db, config, load_plugins(), now=now)
        status = rows(db, "SELECT status, status_reason FROM customer_enrollments WHERE id = :e",
                      e=enrollment)[0]
        assert tuple(status) == ("stopped", "cross_tenant")
        outbox = tmp_path / "outbox"
        assert not outbox.exists() or not list(outbox.rglob("*.eml"))  # B's customer: no email
        summary = run_maintenance(db, config, now=now)  # the merge into B is refused
        assert summary.merged_customers == 0
        assert _one(db, "SELECT customer_id FROM review_requests WHERE id = :r", r=kept) == merged_a
    finally:
        db.dispose()
