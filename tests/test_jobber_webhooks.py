"""Jobber webhooks: signature verification, parsing, and the targeted fetches they cause."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
from fakes.jobber_fake import (
    ACCOUNT_ID,
    BASE_TIME,
    JobberFake,
    encoded_id,
    make_client,
    make_ctx,
    make_invoice,
    make_job,
)
from signing import hmac_sha256_base64 as sign

from blippsync.errors import InputError
from blippsync.records import CustomerRecord, EventRecord
from connectors.jobber import JobberConnector
from connectors.jobber.webhooks import SIGNATURE_HEADER

SECRET = "test-client-secret"
SETTINGS = {"client_secret": SECRET}
CLIENT_ID = "Z2lkOi8vSm9iYmVyL0NsaWVudC8xNDUxODkzMjY="


def body(topic: str, item: str = CLIENT_ID, stamp_key: str = "occurredAt",
         stamp: str = "2026-07-02T09:08:19Z") -> bytes:
    return json.dumps({"data": {"webHookEvent": {
        "topic": topic, "appId": "3ef22a50-072d-430c-a78f-b7646657560b",
        "accountId": ACCOUNT_ID, "itemId": item, stamp_key: stamp}}}).encode()


def test_signature_valid() -> None:
    raw = body("CLIENT_CREATE")
    headers = {SIGNATURE_HEADER: sign(raw, SECRET), "Content-Type": "application/json"}
    assert JobberConnector().verify_webhook(headers, raw, SETTINGS)


def test_signature_header_name_is_case_insensitive() -> None:
    raw = body("CLIENT_CREATE")
    assert JobberConnector().verify_webhook({"x-jobber-hmac-sha256": sign(raw, SECRET)}, raw,
                                            SETTINGS)


def test_signature_tampered_body() -> None:
    raw = body("CLIENT_CREATE")
    headers = {SIGNATURE_HEADER: sign(raw, SECRET)}
    assert not JobberConnector().verify_webhook(headers, raw.replace(b"CREATE", b"UPDATE"),
                                                SETTINGS)


def test_signature_wrong_secret() -> None:
    raw = body("CLIENT_CREATE")
    assert not JobberConnector().verify_webhook({SIGNATURE_HEADER: sign(raw, "other")}, raw,
                                                SETTINGS)


def test_signature_missing_header_or_secret() -> None:
    raw = body("CLIENT_CREATE")
    assert not JobberConnector().verify_webhook({}, raw, SETTINGS)
    assert not JobberConnector().verify_webhook({SIGNATURE_HEADER: ""}, raw, SETTINGS)
    assert not JobberConnector().verify_webhook({SIGNATURE_HEADER: sign(raw, "")}, raw,
                                                {"client_secret": ""})


@pytest.mark.parametrize("key", ["occurredAt", "occuredAt"])
def test_both_spellings_of_the_timestamp(key: str) -> None:
    (notice,) = JobberConnector().parse_webhook({}, body("CLIENT_UPDATE", stamp_key=key,
                                                         stamp="2021-08-12T16:31:36-06:00"))
    assert notice.occurred_at == datetime(2021, 8, 12, 22, 31, 36, tzinfo=UTC)
    assert (notice.entity, notice.entity_id, notice.operation) == ("client", CLIENT_ID, "update")
    assert notice.account_id == ACCOUNT_ID and notice.delivery_id


def test_form_encoded_body_from_old_apps() -> None:
    raw = urlencode({"data[webHookEvent][topic]": "INVOICE_UPDATE",
                     "data[webHookEvent][accountId]": ACCOUNT_ID,
                     "data[webHookEvent][itemId]": "MQ==",
                     "data[webHookEvent][occuredAt]": "2021-08-12T16:31:36Z"}).encode()
    (notice,) = JobberConnector().parse_webhook(
        {"Content-Type": "application/x-www-form-urlencoded"}, raw)
    assert (notice.entity, notice.entity_id, notice.operation) == ("invoice", "MQ==", "update")


def test_topics() -> None:
    parse = JobberConnector().parse_webhook
    (disconnect,) = parse({}, body("APP_DISCONNECT", item=ACCOUNT_ID))
    assert (disconnect.entity, disconnect.operation) == ("connection", "disconnected")
    assert disconnect.account_id == ACCOUNT_ID
    assert parse({}, body("QUOTE_SENT")) == []  # nothing a customer or journey needs
    assert parse({}, body("VISIT_CREATE")) == []  # only completed visits matter
    assert [n.entity for n in parse({}, body("VISIT_COMPLETE"))] == ["visit"]
    assert [n.operation for n in parse({}, body("JOB_CLOSED"))] == ["closed"]
    assert [n.entity for n in parse({}, body("PAYMENT_CREATE"))] == ["payment"]
    with pytest.raises(InputError):
        parse({}, b"not json")
    with pytest.raises(InputError):
        parse({}, b'{"data": {}}')


def test_fetch_turns_notices_into_customers_and_events() -> None:
    clients = [make_client(i) for i in range(1, 4)]
    done = BASE_TIME + timedelta(days=1)
    jobs = [make_job(1, clients[0], done), make_job(2, clients[1], None)]
    invoices = [make_invoice(1, clients[2], done), make_invoice(2, clients[0], None)]
    visits = {encoded_id("Visit", 9): {"id": encoded_id("Visit", 9), "job": jobs[0]}}
    connector = JobberConnector()
    notices = [n for topic, item in [
        ("CLIENT_UPDATE", clients[0]["id"]), ("CLIENT_DESTROY", encoded_id("Client", 77)),
        ("JOB_CLOSED", jobs[0]["id"]), ("JOB_UPDATE", jobs[1]["id"]),
        ("VISIT_COMPLETE", encoded_id("Visit", 9)), ("INVOICE_UPDATE", invoices[0]["id"]),
        ("INVOICE_UPDATE", invoices[1]["id"]), ("APP_DISCONNECT", ACCOUNT_ID),
        ("PAYMENT_CREATE", encoded_id("Payment", 5)),
    ] for n in connector.parse_webhook({}, body(topic, item, stamp=done.isoformat()))]
    with JobberFake(clients=clients, jobs=jobs, invoices=invoices, visits=visits) as fake, \
            httpx.Client() as http:
        records = list(connector.fetch(make_ctx(fake, http), notices))
    customers = [r for r in records if isinstance(r, CustomerRecord)]
    events = [r for r in records if isinstance(r, EventRecord)]
    assert CustomerRecord(external_id=encoded_id("Client", 77), deleted=True,
                          location=f"jobber:client:{encoded_id('Client', 77)}") in customers
    keys = sorted({e.dedupe_key for e in events})
    assert keys == [f"jobber:{ACCOUNT_ID}:invoice:{invoices[0]['id']}:paid",
                    f"jobber:{ACCOUNT_ID}:job:{jobs[0]['id']}:completed"]
    # each event comes after its client, so it never names an unknown customer
    for index, record in enumerate(records):
        if isinstance(record, EventRecord):
            assert any(isinstance(r, CustomerRecord) and
                       r.external_id == record.customer_external_id for r in records[:index])
