"""QuickBooks customers as they really are, through the loopback fake Intuit: sub-customers
(jobs and sites) under their parent, several emails in one field, a mobile beside the
primary phone, and two customers sharing one email."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fakes.intuit import fake_intuit
from fakes.qbo_data import T0, customer, invoice
from fakes.qbo_kit import REALM, connected_business, qbo_config
from journey_support import apply, sequence

from blippsync.channels import Delivery, Message
from blippsync.connections import get_connection
from blippsync.connector import ConnectorContext, WebhookNotice
from blippsync.database import Database
from blippsync.journeys import execute_due_steps, route_events
from blippsync.records import CustomerRecord
from blippsync.sync import SyncOptions, sync_connection
from blippsync.vault import connector_settings, token_provider
from connectors.quickbooks import QuickBooksConnector

QBO = QuickBooksConnector()
NOW = T0 + timedelta(hours=3)


@pytest.fixture
def env(tmp_path: Path, database_url: str, db: Database) -> Any:
    with fake_intuit() as (url, state):
        config = qbo_config(tmp_path, database_url, url, use_cdc=False)
        business, connection = connected_business(db, config, state.refresh_token)
        yield config, business, connection, state


def _sync(db: Database, config: Any, connection: Any) -> Any:
    with db.connect() as conn:
        fresh = get_connection(conn, connection.id)
    summary = sync_connection(db, config, fresh, QBO, SyncOptions(now=NOW))
    assert summary.error is None, summary.error
    return summary


def _rows(db: Database, sql: str, **params: Any) -> list[Any]:
    with db.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def _paid(i: int, minutes: float, customer_id: str, name: str) -> dict[str, Any]:
    return invoice(i, minutes, 120.0, 0, customer_id, linked=(("Payment", f"P{i}"),),
                   CustomerRef={"value": customer_id, "name": name})


def _site(i: int, minutes: float, name: str, parent: str) -> dict[str, Any]:
    # as Intuit returns a job: Job true, a ParentRef, the parent's name in FullyQualifiedName
    return customer(i, minutes, DisplayName=name, FullyQualifiedName=f"Parent:{name}",
                    Job=True, BillWithParent=True, Level=1, ParentRef={"value": parent},
                    GivenName=None, FamilyName=None, PrimaryEmailAddr={"Address": "site@x.com"})


def test_sub_customers_are_sites_of_the_parent_and_their_invoices_reach_the_parent(
        db: Database, env: Any) -> None:
    config, _business, connection, state = env
    # the sites changed before their parent: the parent comes on a later page
    state.add("Customer", _site(8, 1, "0969 Ocean View Road", parent="7"))
    state.add("Customer", _site(9, 2, "55 Twin Lane", parent="7"))
    state.add("Customer", _site(10, 3, "55 Twin Lane: garage", parent="9"))  # a job of a site
    state.add("Customer", customer(7, 50, DisplayName="Sasha Tillou",
                                   PrimaryEmailAddr={"Address": "sasha@tillou.example"}))
    state.add("Invoice", _paid(101, 60, "8", "0969 Ocean View Road"))
    state.add("Invoice", _paid(102, 61, "10", "55 Twin Lane: garage"))
    state.add("Invoice", _paid(103, 62, "7", "Sasha Tillou"))
    summary = _sync(db, config, connection)
    assert summary.counts.created == 1 and summary.counts.rejected == 0
    (parent,) = _rows(db, "SELECT id, external_id, name, email FROM customers")
    assert (parent.external_id, parent.name, parent.email) == ("7", "Sasha Tillou",
                                                                "sasha@tillou.example")
    sites = _rows(db, "SELECT external_id, relation, label, customer_id FROM customer_identities "
                      "ORDER BY external_id")
    assert [(s.external_id, s.relation, s.label, s.customer_id) for s in sites] == [
        ("10", "site", "55 Twin Lane: garage", parent.id),
        ("8", "site", "0969 Ocean View Road", parent.id),
        ("9", "site", "55 Twin Lane", parent.id)]
    events = _rows(db, "SELECT payload, customer_id FROM trigger_events ORDER BY dedupe_key")
    assert [e.customer_id for e in events] == [parent.id] * 3
    assert [e.payload.get("site") for e in events] == [
        {"external_id": "8", "name": "0969 Ocean View Road"},
        {"external_id": "10", "name": "55 Twin Lane: garage"}, None]
    # the sites were not read twice and a second pass changes nothing
    again = _sync(db, config, connection)
    assert (again.counts.created, again.counts.updated) == (0, 0)


def test_a_sub_customer_stored_before_as_a_customer_is_merged_into_its_parent(
        db: Database, env: Any) -> None:
    config, _business, connection, state = env
    state.add("Customer", customer(7, 1, DisplayName="Sasha Tillou"))
    state.add("Customer", customer(8, 2, DisplayName="0969 Ocean View Road"))  # no ParentRef yet
    _sync(db, config, connection)
    state.add("Customer", _site(8, 10, "0969 Ocean View Road", parent="7"))
    _sync(db, config, connection)
    live = _rows(db, "SELECT external_id FROM customers WHERE merged_into_id IS NULL")
    assert [r.external_id for r in live] == ["7"]
    (site,) = _rows(db, "SELECT relation, label FROM customer_identities WHERE external_id = '8'")
    assert (site.relation, site.label) == ("site", "0969 Ocean View Road")


def test_every_email_and_number_is_kept_and_sms_goes_to_the_mobile(db: Database,
                                                                    env: Any) -> None:
    config, business, connection, state = env
    state.add("Customer", customer(
        3, 1, DisplayName="Cool Cars",
        PrimaryEmailAddr={"Address": "Cool_Cars@intuit.com, accounts@coolcars.example"},
        PrimaryPhone={"FreeFormNumber": "(415) 555-9933"},
        Mobile={"FreeFormNumber": "(415) 555-9934"},
        AlternatePhone={"FreeFormNumber": "(415) 555-9935"}))
    state.add("Invoice", _paid(201, 90, "3", "Cool Cars"))
    _sync(db, config, connection)
    (c,) = _rows(db, "SELECT email, other_emails, phone, mobile_phone, phones FROM customers")
    assert (c.email, c.other_emails) == ("cool_cars@intuit.com", ["accounts@coolcars.example"])
    assert (c.phone, c.mobile_phone) == ("+14155559933", "+14155559934")
    assert c.phones == [{"number": "+14155559933", "kind": "primary"},
                        {"number": "+14155559934", "kind": "mobile"},
                        {"number": "+14155559935", "kind": "other"}]
    apply(db, business, sequence(trigger_source="quickbooks", trigger_event_type="invoice_paid",
                                 steps=[{"type": "sms", "text": "Thanks {{ customer.name }}"}]))

    class Capture:
        name, kinds, sent = "capture", frozenset({"email", "sms"}), []

        def send(self, message: Message, config: Any) -> Delivery:
            self.sent.append(message)
            return Delivery(provider_id="ok")

    channel = Capture()
    journeys = config.with_values(channels__email="capture", channels__sms="capture")
    assert route_events(db, journeys, now=NOW).enrolled == 1
    execute_due_steps(db, journeys, {"capture": channel}, now=NOW + timedelta(hours=1))
    assert [m.to for m in channel.sent] == ["+14155559934"]  # the mobile, not the landline


def test_two_customers_sharing_an_email_reach_one_contactable_customer(db: Database,
                                                                       env: Any) -> None:
    config, _business, connection, state = env
    office = {"Address": "office@harbormgmt.example"}
    state.add("Customer", customer(21, 1, DisplayName="Harbor Mgmt - 12 Oak St",
                                   PrimaryEmailAddr=office))
    state.add("Customer", customer(22, 2, DisplayName="Harbor Mgmt - 40 Elm St",
                                   PrimaryEmailAddr=office))
    state.add("Invoice", _paid(301, 70, "22", "Harbor Mgmt - 40 Elm St"))
    summary = _sync(db, config, connection)
    assert (summary.counts.created, summary.counts.joined) == (1, 1)
    assert any(p.get("kind") == "merged" and p["external_id"] == "22" for p in summary.problems)
    (c,) = _rows(db, "SELECT id, external_id, name, email FROM customers")
    assert (c.external_id, c.name, c.email) == ("21", "Harbor Mgmt - 12 Oak St",
                                                "office@harbormgmt.example")
    (event,) = _rows(db, "SELECT customer_id, payload FROM trigger_events")
    assert event.customer_id == c.id  # the job for 40 Elm St reaches the office by email
    assert event.payload["account"] == {"external_id": "22", "name": "Harbor Mgmt - 40 Elm St"}
    (merge,) = _rows(db, "SELECT kind, external_id, resolved_at FROM identity_conflicts")
    assert (merge.kind, merge.external_id, merge.resolved_at) == ("merged", "22", None)


def test_a_webhook_for_a_job_of_a_site_brings_its_parents_first(db: Database, env: Any) -> None:
    config, _business, connection, state = env
    state.add("Customer", customer(7, 1, DisplayName="Sasha Tillou"))
    state.add("Customer", _site(9, 2, "55 Twin Lane", parent="7"))
    state.add("Customer", _site(10, 3, "55 Twin Lane: garage", parent="9"))
    with httpx.Client() as http:
        ctx = ConnectorContext(
            business_id=connection.business_id, connection_id=connection.id, account_id=REALM,
            settings=connector_settings(config, "quickbooks"), cursor=None, http=http,
            log=logging.getLogger("test"), now=NOW,
            tokens=token_provider(db, config, connection, QBO, http))
        records = list(QBO.fetch(ctx, [WebhookNotice(REALM, "Customer", "10", "Update")]))
    assert [(r.external_id, r.parent_external_id) for r in records
            if isinstance(r, CustomerRecord)] == [("7", None), ("9", "7"), ("10", "7")]
    reads = [r for r in state.requests if "/customer/" in r]
    assert len(reads) == 3  # the job, then each ancestor once
