"""POST /sms/twilio: a signed STOP from a customer opts them out at once; forgeries change
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
import test_daemon_support as support
from http_support import serving
from journey_support import make_business, make_customer
from signing import twilio_sha1

from blippsync.config import load_config
from blippsync.database import Database

TOKEN = "twilio-auth-token-for-tests"
PUBLIC = "https://sync.example.com"


@pytest.fixture
def server(tmp_path: Path, database_url: str, db: Database) -> Iterator[str]:
    config = load_config(support.write_config(tmp_path / "c.toml", database_url, "http://x"),
                         environ={}).with_values(twilio__auth_token=TOKEN,
                                                 http__public_base_url=PUBLIC)
    with serving(config, db) as url:
        yield url


def _post(base: str, fields: dict[str, str], token: str = TOKEN) -> httpx.Response:
    body = urlencode(fields)
    signature = twilio_sha1(f"{PUBLIC}/sms/twilio", list(fields.items()), token)
    return httpx.post(f"{base}/sms/twilio", content=body, headers={
        "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature})


def _opted_out(db: Database, customer) -> bool:
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT opted_out FROM customers WHERE id = :id"),
                            {"id": customer}).scalar()


def test_signed_stop_opts_the_sender_out_in_every_business(server: str, db: Database) -> None:
    one, two = make_business(db), make_business(db)
    a = make_customer(db, one, phone="+12125550101")
    b = make_customer(db, two, phone="+12125550101")
    other = make_customer(db, one, phone="+12125550199")
    fields = {"MessageSid": "SM0001", "From": "+12125550101", "To": "+15005550006",
              "Body": "Stop "}
    assert _post(server, {**fields, "MessageSid": "SM0000", "Body": "hello"}).status_code == 200
    assert not _opted_out(db, a)
    response = _post(server, fields)
    assert response.status_code == 200 and "<Response>" in response.text
    assert _opted_out(db, a) and _opted_out(db, b) and not _opted_out(db, other)


def test_forged_or_unsigned_requests_change_nothing(server: str, db: Database) -> None:
    business = make_business(db)
    customer = make_customer(db, business, phone="+12125550102")
    fields = {"MessageSid": "SM0002", "From": "+12125550102", "Body": "STOP"}
    assert _post(server, fields, token="not-the-token").status_code == 401
    unsigned = httpx.post(f"{server}/sms/twilio", content=urlencode(fields),
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401
    assert not _opted_out(db, customer)
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM inbound_sms")).scalar() == 0


def test_a_non_ascii_signature_is_401_not_500(server: str) -> None:
    body = urlencode({"From": "+12125550101", "Body": "STOP"})
    for signature in ("\u00e9t\u00e9".encode("latin-1"), b"\xff\xfe==", "ok\u00a0".encode()):
        response = httpx.post(f"{server}/sms/twilio", content=body, headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature})
        assert response.status_code == 401, signature


def test_the_signed_url_keeps_its_query_string_behind_public_base_url(server: str,
                                                                     db: Database) -> None:
    """Twilio signs the full URL it was given, query string included."""
    business = make_business(db)
    customer = make_customer(db, business, phone="+12125550123")
    fields = {"MessageSid": "SM0100", "From": "+12125550123", "Body": "STOP"}
    signature = twilio_sha1(f"{PUBLIC}/sms/twilio?tenant=1&x=a%20b", list(fields.items()),
                                 TOKEN)
    response = httpx.post(f"{server}/sms/twilio?tenant=1&x=a%20b", content=urlencode(fields),
                          headers={"content-type": "application/x-www-form-urlencoded",
                                   "x-twilio-signature": signature})
    assert response.status_code == 200
    assert _opted_out(db, customer)
def test_start_lifts_a_carrier_opt_out_but_not_a_landline(server: str, db: Database) -> None:
    business = make_business(db)
    customer = make_customer(db, business, phone="+12125550103", opted_out=True)
    make_customer(db, business, phone="+12125550104")
    with db.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO blippsync.sms_suppressions (phone, error_code, reason) VALUES "
            "('+12125550103', '21610', 'unsubscribed at the carrier'), "
            "('+12125550104', '30006', 'landline or unreachable carrier')"))
    for sid, number in (("SM0003", "+12125550103"), ("SM0004", "+12125550104")):
        assert _post(server, {"MessageSid": sid, "From": number, "Body": "START"}
                     ).status_code == 200
    assert not _opted_out(db, customer)
    with db.connect() as conn:
        left = conn.execute(sa.text("SELECT phone FROM blippsync.sms_suppressions")).all()
    assert [tuple(r) for r in left] == [("+12125550104",)]
