"""The QuickBooks connector end to end: loopback fake Intuit -> connector -> sync engine ->
PostgreSQL. Paging, incremental, CDC, invoice_paid, and no plaintext token anywhere."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fakes.intuit import fake_intuit
from fakes.qbo_data import customer, invoice, ts
from fakes.qbo_kit import REALM, connected_business, qbo_config

from blippsync.connections import get_connection
from blippsync.connector import ConnectorContext
from blippsync.database import Database
from blippsync.records import Checkpoint, CustomerRecord, EventRecord
from blippsync.sync import SyncOptions, sync_connection
from blippsync.vault import token_provider
from connectors.quickbooks import QuickBooksConnector

QBO = QuickBooksConnector()
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def env(tmp_path: Path, database_url: str, db: Database) -> Any:
    with fake_intuit() as (url, state):
        config = qbo_config(tmp_path, database_url, url, use_cdc=False)
        business, connection = connected_business(db, config, state.refresh_token)
        yield config, connection, state


def _sync(db: Database, config: Any, connection: Any, **opts: Any) -> Any:
    with db.connect() as conn:
        fresh = get_connection(conn, connection.id)
    summary = sync_connection(db, config, fresh, QBO, SyncOptions(now=NOW, **opts))
    assert summary.error is None, summary.error
    return summary


def _connector_records(db: Database, config: Any, connection: Any, cursor: Any,
                       **settings: Any) -> list[Any]:
    from blippsync.vault import connector_settings

    with httpx.Client() as http:
        ctx = ConnectorContext(
            business_id=connection.business_id, connection_id=connection.id, account_id=REALM,
            settings={**connector_settings(config, "quickbooks"), **settings}, cursor=cursor,
            http=http, log=logging.getLogger("test"),
            tokens=token_provider(db, config, connection, QBO, http), now=NOW)
        return list(QBO.sync(ctx))


def test_2500_customers_over_three_pages_including_inactive_then_exactly_the_changed(
        db: Database, env: Any) -> None:
    config, connection, state = env
    for i in range(1, 2501):
        state.add("Customer", customer(i, minutes=i / 10, active=i % 10 != 0))
    summary = _sync(db, config, connection)
    assert summary.counts.created == 2500
    pages = [r for r in state.requests if "FROM%20Customer" in r or "FROM+Customer" in r]
    assert len(pages) == 3
    assert all("Active+IN+%28true%2C+false%29" in p or "Active%20IN" in p for p in pages)
    assert ["STARTPOSITION+1+" in pages[0], "STARTPOSITION+1001+" in pages[1],
            "STARTPOSITION+2001+" in pages[2]] == [True, True, True]
    with db.connect() as conn:
        archived = conn.execute(sa.text(
            "SELECT count(*) FROM public.customers WHERE archived")).scalar_one()
        cursor = conn.execute(sa.text("SELECT cursor FROM public.connections WHERE id = :id"),
                              {"id": connection.id}).scalar_one()
    assert archived == 250
    assert cursor["Customer"] == {"since": ts(250), "ids": ["2500"]}  # offset kept as sent

    # change 7 (one at the exact boundary instant), add 3, then sync incrementally
    changed = [5, 999, 1000, 1001, 2000, 2499, 2500]
    for i in changed:
        state.add("Customer", customer(i, minutes=300, DisplayName=f"Renamed {i}"))
    for i in (2501, 2502, 2503):
        state.add("Customer", customer(i, minutes=250))  # same second as the old boundary
    records = _connector_records(db, config, connection, cursor)
    ids = sorted(int(r.external_id) for r in records if isinstance(r, CustomerRecord))
    assert ids == sorted(changed + [2501, 2502, 2503])
    summary = _sync(db, config, connection)
    assert (summary.counts.created, summary.counts.updated) == (3, 7)
    again = _connector_records(db, config, connection, _cursor(db, connection))
    assert [r for r in again if not isinstance(r, Checkpoint)] == []


def _cursor(db: Database, connection: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT cursor FROM public.connections WHERE id = :id"),
                            {"id": connection.id}).scalar_one()


def test_cdc_incremental_with_deleted_and_cap_split(db: Database, env: Any) -> None:
    config, connection, state = env
    for i in range(1, 6):
        state.add("Customer", customer(i, minutes=i))
    state.add("Invoice", invoice(1, minutes=1, total=100, balance=100))
    _sync(db, config, connection)
    cursor = _cursor(db, connection)
    state.requests.clear()
    state.add("Customer", customer(2, minutes=20, DisplayName="Changed"))
    state.cdc_deleted.append(("Customer", {"domain": "QBO", "status": "Deleted", "Id": "3",
                                           "MetaData": {"LastUpdatedTime": ts(21)}}))
    state.add("Invoice", invoice(1, minutes=22, total=100, balance=0,
                                 linked=(("Payment", "120"),)))
    records = _connector_records(db, config, connection, cursor, use_cdc=True)
    assert [r for r in state.requests if "/cdc?" in r] and not [
        r for r in state.requests if "/query?" in r]
    customers = {r.external_id: r for r in records if isinstance(r, CustomerRecord)}
    assert set(customers) == {"2", "3"} and customers["3"].deleted
    assert [e.dedupe_key for e in records if isinstance(e, EventRecord)] == [
        f"quickbooks:{REALM}:invoice:1:paid"]

    # over the cap: per entity, and an entity alone at the cap goes to paged queries
    for i in range(10, 1100):
        state.add("Customer", customer(i, minutes=30))
    state.requests.clear()
    records = _connector_records(db, config, connection, cursor, use_cdc=True)
    cdc_calls = [r for r in state.requests if "/cdc?" in r]
    assert len(cdc_calls) == 3 and [r for r in state.requests if "/query?" in r]
    got = {r.external_id for r in records if isinstance(r, CustomerRecord)}
    assert {str(i) for i in range(10, 1100)} <= got  # nothing truncated


def test_invoice_paid_events_through_the_engine_fire_once(db: Database, env: Any) -> None:
    config, connection, state = env
    state.add("Customer", customer(3, minutes=1))
    state.add("Invoice", invoice(12, minutes=2, total=2369.52, balance=0,
                                 linked=(("Payment", "120"), ("Payment", "61"))))
    state.add("Invoice", invoice(13, minutes=3, total=750, balance=450,
                                 linked=(("Payment", "121"),)))  # partial
    state.add("Invoice", invoice(14, minutes=4, total=0, balance=0, PrivateNote="Voided"))
    state.add("Invoice", invoice(15, minutes=5, total=80, balance=0,
                                 linked=(("CreditMemo", "7"),)))  # credit memo only
    summary = _sync(db, config, connection)
    assert summary.counts.emitted + summary.counts.historical == 1
    # the payment is voided (balance back up) and paid again: still one fact
    state.add("Invoice", invoice(12, minutes=10, total=2369.52, balance=2369.52))
    _sync(db, config, connection)
    state.add("Invoice", invoice(12, minutes=11, total=2369.52, balance=0,
                                 linked=(("Payment", "130"),)))
    summary = _sync(db, config, connection)
    assert summary.counts.duplicate == 1
    with db.connect() as conn:
        rows = conn.execute(sa.text("SELECT event_type, dedupe_key, external_customer_id "
                                    "FROM public.trigger_events")).all()
    assert [tuple(r) for r in rows] == [("invoice_paid", f"quickbooks:{REALM}:invoice:12:paid",
                                         "3")]


def test_no_plaintext_token_in_any_column_or_log(db: Database, env: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    config, connection, state = env
    for i in range(1, 30):
        state.add("Customer", customer(i, minutes=i))
    with caplog.at_level(logging.DEBUG):
        _sync(db, config, connection)
        # a 401 mid-sync forces a second refresh: more tokens to leak
        state.access_tokens.clear()
        state.add("Customer", customer(99, minutes=99))
        _sync(db, config, connection)
    secrets = {state.refresh_token, state.previous_refresh_token, "RT1-initial-0000000000",
               "fake-client-secret-0123456789"}
    secrets |= {t for t in state.access_tokens}
    assert state.refreshes >= 2
    dump = _dump_every_text_column(db)
    assert dump, "the dump read nothing"
    for secret in secrets:
        assert secret not in dump
        assert secret not in caplog.text
    for record in caplog.records:
        assert not any(s in record.getMessage() for s in secrets)


def _dump_every_text_column(db: Database) -> str:
    """Like grepping a pg_dump: every row of every table in public, cast to text."""
    with db.connect() as conn:
        tables = conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
        parts = []
        for table in tables:
            rows = conn.execute(sa.text(f'SELECT t::text FROM public."{table}" t')).scalars()
            parts.extend(rows)
    return "\n".join(parts)
