"""The twilio channel against cassettes with Twilio's real request and response shapes:
POST /2010-04-01/Accounts/{Sid}/Messages.json, form-encoded, basic auth (filtered)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
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

from blippsync.channels import DeliveryFailed, DeliveryUnknown, Message
from blippsync.channels.twilio import TwilioChannel
from blippsync.config import Config
from blippsync.database import Database
from blippsync.journeys import execute_due_steps, route_events
from blippsync.plugins import load_plugins

CASSETTES = Path(__file__).parent / "cassettes" / "twilio"
SID = "AC0a1b2c3d4e5f60718293a4b5c6d7e8f9"
TOKEN = "tw-auth-token-0123456789abcdef"
replay = vcr.VCR(cassette_library_dir=str(CASSETTES), record_mode="none",
                 match_on=["method", "uri", "body"], filter_headers=["authorization"])


def _config(tmp_path: Path, database_url: str = "postgresql://unused", **extra: Any) -> Config:
    return journey_config(tmp_path, database_url, twilio__account_sid=SID,
                          twilio__auth_token=TOKEN, twilio__from_number="+15005550006",
                          channels__sms="twilio", **extra)


def _sms(to: str, body: str = "hello") -> Message:
    return Message(kind="sms", send_key="e:0", business_id="b", business_name="Demo Plumbing",
                   customer_id="c", to=to, body=body)


def test_send_posts_the_form_with_basic_auth(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    channel = TwilioChannel()
    config = _config(tmp_path)
    channel._client(config).event_hooks["request"].append(seen.append)
    with replay.use_cassette("send_ok.yaml") as cassette:
        delivery = channel.send(_sms("+15555550123",
                                     "Thanks Ada, from Demo Plumbing! Reply STOP to opt out."),
                                config)
    assert cassette.play_count == 1
    assert delivery.provider_id == "SM1f2e3d4c5b6a79880796a5b4c3d2e1f0"
    assert delivery.details["status"] == "queued"
    (request,) = seen
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == httpx.BasicAuth(SID, TOKEN)._auth_header
    for name in CASSETTES.glob("*.yaml"):  # the secret never lands in a cassette
        assert TOKEN not in name.read_text() and "authorization" not in name.read_text().lower()


@pytest.mark.parametrize(("to", "kind", "retryable", "opt_out"), [
    ("+15555550100", DeliveryFailed, False, False),   # 21211 invalid 'To'
    ("+15555550101", DeliveryFailed, False, True),    # 21610 unsubscribed (carrier STOP)
    ("+15555550102", DeliveryFailed, True, False),    # 429: not taken, retry later
    ("+15555550103", DeliveryUnknown, None, None),    # 500: may have been taken
])
def test_error_answers(to: str, kind: type, retryable: bool | None, opt_out: bool | None,
                       tmp_path: Path) -> None:
    with replay.use_cassette("errors.yaml", allow_playback_repeats=True), \
            pytest.raises(kind) as raised:
        TwilioChannel().send(_sms(to), _config(tmp_path))
    if kind is DeliveryFailed:
        assert (raised.value.retryable, raised.value.opt_out) == (retryable, opt_out)
        assert "twilio: HTTP" in raised.value.reason and TOKEN not in raised.value.reason


def test_unreachable_api_is_a_retryable_failure(tmp_path: Path) -> None:
    config = _config(tmp_path, twilio__base_url="http://127.0.0.1:9", twilio__timeout_seconds=2.0)
    with pytest.raises(DeliveryFailed) as failed:
        TwilioChannel().send(_sms("+15555550123"), config)
    assert failed.value.retryable


def test_journey_sms_step_through_twilio(db: Database, database_url: str, tmp_path: Path) -> None:
    business = make_business(db, name="Demo Plumbing")
    apply(db, business, sequence(steps=[{"type": "sms", "purpose": "thank_you",
                                         "text": "Thanks {{ customer.first_name }}, from "
                                                 "{{ business.name }}!"}]))
    add_event(db, business, make_customer(db, business, phone="+15555550123"))
    config = _config(tmp_path, database_url)
    route_events(db, config, now=noon_utc())
    with replay.use_cassette("send_ok.yaml"):
        summary = execute_due_steps(db, config, load_plugins(), now=noon_utc())
    assert summary.sent == 1
    (ledger,) = rows(db, "SELECT status, channel, metadata ->> 'provider_id' AS p "
                         "FROM public.review_requests")
    assert (ledger.status, ledger.channel, ledger.p) == \
        ("sent", "sms", "SM1f2e3d4c5b6a79880796a5b4c3d2e1f0")
