"""The QuickBooks API client against recorded Intuit shapes (vcrpy, record mode none), the
field mapping, the invoice-paid rule, webhooks and the machine-wide rate limit."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
from fakes.intuit import fake_intuit
from fakes.qbo_data import customer, invoice
from signing import hmac_sha256_base64

from blippsync.connector import ConnectorContext, WebhookNotice
from blippsync.database import Database
from blippsync.errors import ConnectorError, TransientError
from blippsync.records import Checkpoint, CustomerMerge, CustomerRecord, EventRecord
from connectors.quickbooks import QuickBooksConnector
from connectors.quickbooks.client import QboClient, QboNotFound
from connectors.quickbooks.mapping import customer_record, invoice_paid_event, is_paid
from connectors.quickbooks.settings import QboSettings
from connectors.quickbooks.webhooks import parse, verify

CASSETTES = Path(__file__).parent / "cassettes" / "quickbooks"
REALM = "9341452732952867"
QBO = QuickBooksConnector()
recorder = vcr.VCR(cassette_library_dir=str(CASSETTES), record_mode="none",
                   match_on=["method", "scheme", "host", "path", "query"],
                   filter_headers=["authorization"],
                   filter_post_data_parameters=["refresh_token", "client_secret", "code"])


class StaticTokens:
    """A TokenProvider without a database, for client tests that never refresh."""

    def access_token(self) -> str:
        return "cassette-dummy-access-1"

    def refresh_after_rejection(self, rejected_token: str) -> str:
        raise AssertionError("no refresh expected")


@pytest.fixture
def http() -> Any:
    with httpx.Client() as client:
        yield client


def _client(http: httpx.Client, tmp_path: Path, waits: list[float], tokens: Any = None,
            **settings: Any) -> QboClient:
    s = QboSettings.from_mapping({"environment": "sandbox", **settings})
    return QboClient(http, tokens or StaticTokens(), REALM, s,
                     None, logging.getLogger("test.qbo"),
                     sleep=waits.append)


# --- recorded shapes -------------------------------------------------------------------------


def test_throttle_xml_and_503_retry_after_then_pages_to_the_empty_page(
        http: httpx.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    with recorder.use_cassette("throttled_then_pages.yaml"), \
            caplog.at_level(logging.WARNING, "test.qbo"):
        ctx = ConnectorContext(business_id=None, connection_id=None, account_id=REALM,  # type: ignore[arg-type]
                               settings={"environment": "sandbox", "page_size": 2},
                               cursor=None, http=http, log=logging.getLogger("t"),
                               tokens=StaticTokens(),
                               options={"sleep": waits.append})
        records = []
        client = QBO._client(ctx, QboSettings.from_mapping(ctx.settings))
        for record in QBO._by_query(ctx, client, "Customer", {"Customer": _mark()},
                                    QboSettings.from_mapping(ctx.settings),
                                    QBO._family(ctx, client)):
            records.append(record)
    # 60 s after a throttle without Retry-After, then the Retry-After asked for, each plus
    # at most a second of jitter
    assert len(waits) == 2 and 60.0 <= waits[0] <= 61.0 and 7.0 <= waits[1] <= 8.0
    assert "intuit_tid=1-6788f7a0-06c38dcf1bba5a6e36487d41" in caplog.text
    customers = [r for r in records if isinstance(r, CustomerRecord)]
    assert [(c.external_id, c.name, c.phone, c.mobile, c.archived) for c in customers] == [
        ("123", "Sample Customer", None, None, False),
        ("58", "James King", None, "(555) 555-5555", True)]
    assert customers[1].address == "Cool Cars, 65 Ocean Dr., Half Moon Bay, CA  94213"
    assert isinstance(records[-1], Checkpoint)


def _mark() -> Any:
    from connectors.quickbooks.incremental import Watermark

    return Watermark()


def test_fault_in_200_is_an_error_naming_intuit_tid_and_610_is_not_found(
        http: httpx.Client, tmp_path: Path) -> None:
    with recorder.use_cassette("fault_in_200.yaml"):
        client = _client(http, tmp_path, [])
        with pytest.raises(ConnectorError, match=r"ValidationFault 6000.*intuit_tid=1-6788f7b0"):
            client.get("invoice/777")
        with pytest.raises(QboNotFound, match="610"):
            client.get("customer/404")


def test_retries_are_bounded(http: httpx.Client, tmp_path: Path) -> None:
    waits: list[float] = []
    with recorder.use_cassette("throttled_then_pages.yaml", allow_playback_repeats=True):
        client = _client(http, tmp_path, waits, max_retries=1)
        with pytest.raises(TransientError, match="throttled.*gave up after 2 tries"):
            client.query("SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY "
                         "MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 2")


def test_401_refreshes_through_the_vault_once_and_retries(tmp_path: Path, database_url: str,
                                                          db: Database) -> None:
    from fakes.qbo_kit import KEY_A, connected_business

    from blippsync.config import load_config
    from blippsync.vault import load_keyring, token_provider

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{database_url}"\n[encryption]\nkeys = ["{KEY_A}"]\n'
                   '[quickbooks]\nenvironment = "sandbox"\nclient_id = "cassette-client"\n'
                   'client_secret = "cassette-secret-value"\n')
    config = load_config(cfg, environ={})
    _, connection = connected_business(db, config, "cassette-dummy-refresh-1")
    from blippsync.vault import store_tokens

    store_tokens(db, config, connection.business_id, "quickbooks", REALM,
                 "cassette-dummy-refresh-1", "cassette-dummy-access-1",
                 datetime(2099, 1, 1, tzinfo=UTC))
    with recorder.use_cassette("expired_token_refresh.yaml") as cassette, httpx.Client() as http:
        tokens = token_provider(db, config, connection, QBO, http)
        client = QboClient(http, tokens, REALM, QboSettings.from_mapping(
            {"environment": "sandbox"}), None,
            logging.getLogger("t"), sleep=lambda s: None)
        body = client.get(f"companyinfo/{REALM}")
        assert cassette.all_played
    assert body["CompanyInfo"]["CompanyName"] == "Sandbox Company_US_1"
    with db.connect() as conn:
        import sqlalchemy as sa

        stored, business = conn.execute(sa.text(
            "SELECT refresh_token, business_id FROM public.integrations_quickbooks "
            "WHERE realm_id = :r"), {"r": REALM}).one()
    from blippsync.vault.store import sealed_at

    at = sealed_at("integrations_quickbooks", "refresh_token", business, business)
    assert load_keyring(config).decrypt(stored, at) == "cassette-dummy-refresh-2"


def test_no_secret_in_any_cassette() -> None:
    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text()
        assert not re.search(r"(?im)^\s*authorization:", text), path.name
        assert not re.search(r"(?:Bearer (?!realm=)|Basic )\S", text), path.name
        assert "RT1-" not in text and "eyJ" not in text, path.name


# --- mapping and the invoice-paid rule -----------------------------------------------------


def test_customer_mapping_fallbacks_and_absent_subobjects() -> None:
    full = customer_record(customer(7, 1))
    assert (full.name, full.email, full.phone) == ("Customer 7", "customer7@example.com",
                                                   "(415) 555-0007")
    assert full.address == "7 Main St, Mountain View, CA 94043"
    bare = customer_record({"Id": "8", "GivenName": "Ann", "FamilyName": "Lee",
                            "Mobile": {"FreeFormNumber": "415-555-0101"}})
    assert (bare.name, bare.email, bare.phone, bare.mobile, bare.address, bare.archived) == (
        "Ann Lee", None, None, "415-555-0101", None, False)
    company = customer_record({"Id": "9", "CompanyName": "Acme", "PrimaryPhone": {},
                               "PrimaryEmailAddr": {"Address": None}, "Active": False})
    assert (company.name, company.phone, company.email, company.archived) == (
        "Acme", None, None, True)
    gone = customer_record({"domain": "QBO", "status": "Deleted", "Id": "10",
                            "MetaData": {"LastUpdatedTime": "2026-11-01T09:00:00-07:00"}})
    assert gone.deleted and gone.name is None


@pytest.mark.parametrize(("case", "inv", "fires"), [
    ("paid", invoice(1, 1, 2369.52, 0, linked=(("Payment", "120"),)), True),
    ("paid with estimate link too", invoice(1, 1, 100, 0, linked=(("Estimate", "5"),
                                                                    ("Payment", "9"))), True),
    ("partial", invoice(1, 1, 750, 450, linked=(("Payment", "121"),)), False),
    ("unpaid", invoice(1, 1, 362.07, 362.07), False),
    ("voided", invoice(1, 1, 0, 0, PrivateNote="Voided"), False),
    ("voided note on a paid total", invoice(1, 1, 50, 0, linked=(("Payment", "3"),),
                                            PrivateNote="Voided"), False),
    ("zero total", invoice(1, 1, 0, 0, linked=(("Payment", "1"),)), False),
    ("credit memo only", invoice(1, 1, 80, 0, linked=(("CreditMemo", "7"),)), False),
])
def test_invoice_paid_rule(case: str, inv: dict[str, Any], fires: bool) -> None:
    assert is_paid(inv) is fires, case
    event = invoice_paid_event(REALM, inv)
    assert (event is not None) is fires
    if event:
        assert event.dedupe_key == f"quickbooks:{REALM}:invoice:1:paid"
        assert event.contact_email == "Cool_Cars@intuit.com"
        assert event.customer_external_id == "3" and event.occurred_at.tzinfo is not None


# --- webhooks ----------------------------------------------------------------------------


LEGACY = {"eventNotifications": [{"realmId": REALM, "dataChangeEvent": {"entities": [
    {"name": "Customer", "id": "1", "operation": "Create",
     "lastUpdated": "2015-10-05T14:42:19-0700"},
    {"name": "Customer", "id": "5", "operation": "Merge", "deletedId": "4",
     "lastUpdated": "2025-09-08T20:52:31.657Z"},
    {"name": "Payment", "id": "163", "operation": "Create",
     "lastUpdated": "2015-10-05T14:42:19-0700"}]}}]}
CLOUD = [{"specversion": "1.0", "id": "88cd52aa-33b6-4351-9aa4-47572edbd068",
          "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
          "type": "qbo.customer.merged.v1", "datacontenttype": "application/json",
          "time": "2025-09-10T21:31:25.179851517Z", "intuitentityid": "5",
          "intuitaccountid": REALM, "data": {"deletedid": "4"}},
         {"specversion": "1.0", "id": "99cd52aa-33b6-4351-9aa4-47572edbd069",
          "source": "intuit.x", "type": "qbo.invoice.updated.v1",
          "time": "2025-09-10T21:31:25Z", "intuitentityid": "12", "intuitaccountid": REALM,
          "data": {}}]


def test_signature_over_raw_body_in_constant_time() -> None:
    body = json.dumps(LEGACY).encode()
    sig = hmac_sha256_base64(body, "verifier-token-123")
    assert verify({"intuit-signature": sig}, body, "verifier-token-123")
    assert verify({"Intuit-Signature": sig}, body, "verifier-token-123")
    assert not verify({"intuit-signature": sig}, body + b" ", "verifier-token-123")
    assert not verify({"intuit-signature": sig}, body, "other-token")
    assert not verify({"intuit-signature": "not base64!"}, body, "verifier-token-123")
    assert not verify({}, body, "verifier-token-123")
    assert QBO.verify_webhook({"intuit-signature": sig}, body,
                              {"webhook_verifier_token": "verifier-token-123"})


def test_both_payload_shapes_parse_to_the_same_notices() -> None:
    legacy = parse(json.dumps(LEGACY).encode())
    assert [(n.entity, n.entity_id, n.operation, n.extra) for n in legacy] == [
        ("Customer", "1", "Create", {}), ("Customer", "5", "Merge", {"deleted_id": "4"}),
        ("Payment", "163", "Create", {})]
    assert legacy[0].occurred_at is not None and legacy[1].occurred_at is not None
    cloud = parse(json.dumps(CLOUD).encode())
    assert [(n.account_id, n.entity, n.entity_id, n.operation, n.extra, n.delivery_id)
            for n in cloud] == [
        (REALM, "Customer", "5", "Merge", {"deleted_id": "4"},
         "88cd52aa-33b6-4351-9aa4-47572edbd068"),
        (REALM, "Invoice", "12", "Update", {}, "99cd52aa-33b6-4351-9aa4-47572edbd069")]
    with pytest.raises(Exception, match="neither"):
        parse(b'{"hello": 1}')


def test_webhook_fetch_targets_the_named_entities(http: httpx.Client, tmp_path: Path) -> None:
    with fake_intuit() as (url, state):
        state.access_tokens.add("cassette-dummy-access-1")
        state.add("Customer", customer(5, 1))
        state.add("Invoice", invoice(70, 2, 55, 0, linked=(("Payment", "163"),)))
        state.add("Payment", {"Id": "163", "TotalAmt": 55.0, "CustomerRef": {"value": "3"},
                              "Line": [{"Amount": 55.0, "LinkedTxn": [
                                  {"TxnId": "70", "TxnType": "Invoice"}]}],
                              "MetaData": {"LastUpdatedTime": "2026-11-01T09:02:00-07:00"}})
        notices = [WebhookNotice(REALM, "Customer", "5", "Merge", extra={"deleted_id": "4"}),
                   WebhookNotice(REALM, "Customer", "6", "Delete"),
                   WebhookNotice(REALM, "Customer", "404", "Update"),  # gone since: skipped
                   WebhookNotice(REALM, "Payment", "163", "Create"),
                   WebhookNotice(REALM, "Invoice", "70", "Update"),  # same invoice: once
                   WebhookNotice("other-realm", "Customer", "5", "Update")]
        ctx = ConnectorContext(business_id=None, connection_id=None, account_id=REALM,  # type: ignore[arg-type]
                               settings={"api_base_url": url}, cursor=None, http=http,
                               log=logging.getLogger("t"), tokens=StaticTokens())
        records = list(QBO.fetch(ctx, notices))
    assert [type(r).__name__ for r in records] == ["CustomerRecord", "CustomerMerge",
                                                   "CustomerRecord", "EventRecord"]
    assert records[1] == CustomerMerge(survivor_external_id="5", merged_external_id="4")
    assert records[2].deleted  # type: ignore[union-attr]
    assert isinstance(records[3], EventRecord) and records[3].payload["payment_ids"] == ["163"]


