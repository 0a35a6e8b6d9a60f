"""Delivery outcomes from Twilio: SMS sent with a StatusCallback through a loopback Twilio,
then status callbacks signed with Twilio's published algorithm (tests/signing.py, an
independent signer pinned to Twilio's published vectors in test_webhook_signatures.py)
update the ledger and stop SMS to dead numbers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fakes.twilio_fake import FakeTwilio
from http_support import serving
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
from signing import twilio_sha1

from blippsync.config import Config
from blippsync.database import Database
from blippsync.journeys import execute_due_steps, route_events
from blippsync.journeys.explain import explain_customer, story_lines
from blippsync.plugins import load_plugins

SID = "AC0a1b2c3d4e5f60718293a4b5c6d7e8f9"
TOKEN = "tw-auth-token-for-status-tests"
PUBLIC = "https://sync.plumbing.example"
CALLBACK = f"{PUBLIC}/sms/twilio/status"
NOW = noon_utc()  # 12:00 in New York: inside SMS hours for +1 212 numbers
PHONE = "+12125550160"
SMS_STEPS = [{"type": "sms", "delay_minutes": 60 if i else 0, "purpose": "follow_up",
              "text": f"Message {i + 1}"} for i in range(3)]


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(SID, TOKEN) as fake:
        yield fake


@pytest.fixture
def config(tmp_path: Path, database_url: str, twilio: FakeTwilio) -> Config:
    return journey_config(tmp_path, database_url, channels__sms="twilio",
                          twilio__base_url=twilio.url, twilio__account_sid=SID,
                          twilio__auth_token=TOKEN, twilio__from_number="+15005550006",
                          http__public_base_url=PUBLIC)


@pytest.fixture
def plugins() -> Iterator[Any]:
    loaded = load_plugins()
    yield loaded
    loaded.channels["twilio"].close()


@pytest.fixture
def server(config: Config, db: Database, plugins: Any) -> Iterator[str]:
    with serving(config, db, plugins) as url:
        yield url


def _report(server: str, sid: str, status: str, code: str | None = None,
            token: str = TOKEN, query: str = "", signed_url: str | None = None) -> httpx.Response:
    """A status callback as Twilio posts it (signed over the full URL, query included)."""
    fields = {"AccountSid": SID, "ApiVersion": "2010-04-01", "From": "+15005550006",
              "To": PHONE, "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
              "SmsStatus": status}
    if code:
        fields["ErrorCode"] = code
    url = signed_url if signed_url is not None else CALLBACK + query
    return httpx.post(f"{server}/sms/twilio/status{query}", content=urlencode(fields), headers={
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio_sha1(url, list(fields.items()), token)})


def _enrolled(db: Database, config: Config, phone: str = PHONE) -> uuid.UUID:
    business = make_business(db)
    customer = make_customer(db, business, phone=phone)
    apply(db, business, sequence(steps=SMS_STEPS))
    add_event(db, business, customer)
    route_events(db, config, now=NOW)
    return customer


def _messages(db: Database, customer: uuid.UUID) -> list[Any]:
    return rows(db, "SELECT status, error_code, last_error, metadata ->> 'provider_id' AS sid "
                    "FROM review_requests WHERE customer_id = :c ORDER BY step_order", c=customer)


def _run(db: Database, config: Config, plugins: Any, hours: int) -> Any:
    return execute_due_steps(db, config, plugins, now=NOW + timedelta(hours=hours))


def test_callbacks_mark_delivered_and_undelivered_and_a_landline_gets_no_more_sms(
        db: Database, config: Config, server: str, twilio: FakeTwilio, plugins: Any) -> None:
    ada = _enrolled(db, config)
    bob = _enrolled(db, config)  # the same number, another business
    assert _run(db, config, plugins, 0).sent == 2
    assert {f["StatusCallback"] for f in twilio.forms} == {CALLBACK}
    (first,) = _messages(db, ada)
    assert first.status == "sent" and first.sid.startswith("SM")

    assert _report(server, first.sid, "sent").json() == {"updated": False}  # not final
    assert _report(server, first.sid, "delivered", token="forged").status_code == 401
    assert _report(server, first.sid, "delivered", query="?attempt=2",  # query not signed
                   signed_url=CALLBACK).status_code == 401
    assert _messages(db, ada)[0].status == "sent"
    assert _report(server, first.sid, "delivered", query="?attempt=2").json() == {
        "updated": True}
    assert _messages(db, ada)[0].status == "delivered"

    assert _run(db, config, plugins, 1).sent == 2
    second = _messages(db, ada)[1]
    assert _report(server, second.sid, "undelivered", "30006").json() == {"updated": True}
    after = _messages(db, ada)[1]
    assert (after.status, after.error_code) == ("undelivered", "30006")
    assert "30006" in after.last_error and "landline" in after.last_error
    assert _report(server, second.sid, "delivered").json() == {"updated": False}  # late: kept
    assert _messages(db, ada)[1].status == "undelivered"

    sent_before = len(twilio.forms)
    third = _run(db, config, plugins, 2)
    assert third.sent == 0 and third.completed == 2 and len(twilio.forms) == sent_before
    for customer in (ada, bob):  # one sending number: the landline is nobody's SMS number
        story = "\n".join(story_lines(explain_customer(db, str(customer))))
        assert "SMS refused by the carrier: 30006" in story
        assert "step 3: skipped (the carrier refused this number for good: 30006" in story
    assert "undelivered: twilio error 30006" in "\n".join(
        story_lines(explain_customer(db, str(ada))))


def test_unreachable_counts_only_three_in_a_row_and_filtering_never_suppresses(
        db: Database, config: Config, server: str, plugins: Any) -> None:
    ada = _enrolled(db, config)
    for hour in range(2):
        assert _run(db, config, plugins, hour).sent == 1
        sid = _messages(db, ada)[hour].sid
        assert _report(server, sid, "undelivered", "30003").json() == {"updated": True}
        assert not rows(db, "SELECT 1 FROM blippsync.sms_suppressions")
    assert _run(db, config, plugins, 2).sent == 1
    assert _report(server, _messages(db, ada)[2].sid, "undelivered", "30003").status_code == 200
    (suppressed,) = rows(db, "SELECT phone, error_code, reason FROM blippsync.sms_suppressions")
    assert suppressed == (PHONE, "30003", "unreachable 3 times in a row")

    other = _enrolled(db, config, phone="+12125550161")
    assert _run(db, config, plugins, 0).sent == 1
    (msg,) = _messages(db, other)
    assert _report(server, msg.sid, "failed", "30007").json() == {"updated": True}
    assert _messages(db, other)[0][:2] == ("failed", "30007")
    assert len(rows(db, "SELECT 1 FROM blippsync.sms_suppressions")) == 1  # ours, not theirs
    assert _report(server, "SM" + "0" * 32, "delivered").json() == {"updated": False}
