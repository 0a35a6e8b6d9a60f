"""One poisoned webhook notice holds back only itself: the notices fetched with it are
written and marked processed; it alone is retried later (and finally marked failed)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from fakes.intuit import fake_intuit
from fakes.qbo_data import customer, invoice
from fakes.qbo_kit import REALM, connected_business, qbo_config

from blippsync import webhook_inbox as inbox
from blippsync.connector import WebhookNotice
from blippsync.daemon.worker import Worker
from blippsync.database import Database
from blippsync.metrics import DaemonMetrics
from blippsync.plugins import load_plugins


def _notice(entity: str, entity_id: str) -> WebhookNotice:
    return WebhookNotice(account_id=REALM, entity=entity, entity_id=entity_id,
                         operation="Update", occurred_at=datetime(2026, 11, 20, tzinfo=UTC))


def test_a_poisoned_notice_does_not_hold_back_the_others(tmp_path: Path, database_url: str,
                                                         db: Database) -> None:
    with fake_intuit() as (url, state):
        state.add("Customer", customer(7, minutes=5, GivenName="Valid", DisplayName="Valid Update"))
        state.add("Invoice", invoice(12, minutes=6, total=90.0, balance=0.0, customer_id="7",
                                     linked=(("Payment", "120"),)))
        state.refused.add("invoice/777")  # QuickBooks answers this id with a ValidationFault
        config = qbo_config(tmp_path, database_url, url)
        business, connection = connected_business(db, config, state.refresh_token)
        inbox.store(db, "quickbooks", [_notice("Customer", "7"), _notice("Invoice", "777"),
                                       _notice("Invoice", "12")], b"{}")
        plugins = load_plugins()
        worker = Worker(db, config, plugins, DaemonMetrics(), "test-owner")
        worker.process_notices(connection, plugins.connector("quickbooks"), threading.Event())
    with db.connect() as conn:
        notices = {r.entity_id: r for r in conn.execute(sa.text(
            "SELECT entity_id, state, attempts, last_error FROM webhook_deliveries"))}
        names = conn.execute(sa.text("SELECT name FROM customers WHERE business_id = :b"),
                             {"b": business}).scalars().all()
        events = conn.execute(sa.text("SELECT dedupe_key FROM trigger_events")).scalars().all()
    assert notices["7"].state == notices["12"].state == "processed"
    assert names == ["Valid Update"]
    assert events == [f"quickbooks:{REALM}:invoice:12:paid"]
    poisoned = notices["777"]
    assert (poisoned.state, poisoned.attempts) == ("pending", 1)  # retried later, alone
    assert "ValidationFault 6000" in poisoned.last_error
