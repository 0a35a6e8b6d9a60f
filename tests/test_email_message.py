"""The email a journey sends, parsed back with the standard library's `email` package: the
headers mailbox providers require, both parts, escaping, and the start-up checks that keep
a deployment from sending mail no provider would accept."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from journey_support import (
    add_event,
    apply,
    cli,
    journey_config,
    make_business,
    make_customer,
    noon_utc,
    rows,
    sequence,
)
from test_channels_smtp import Inbox, smtp_server  # noqa: F401  (the fixture)

from blippsync.channels.readiness import check_channels
from blippsync.config import Config
from blippsync.database import Database
from blippsync.errors import ConfigError
from blippsync.hookspecs import hookimpl
from blippsync.journeys import execute_due_steps, route_events
from blippsync.plugins import load_plugins
from blippsync.sender_identity import set_sender_identity

PUBLIC = "https://sync.plumbing.example"
ADDRESS = "12 Pipe Street, Springfield, IL 62701"
NOW = noon_utc()
EMAIL_STEP = {"type": "email", "purpose": "review",
              "subject": "Thanks {{ customer.first_name }}!",
              "body": "Hi {{ customer.first_name }} & welcome <back>,\n\n"
                      "Leave us a review: {{ review_link }}\nThanks!"}


def _config(tmp_path: Path, database_url: str, **extra: Any) -> Config:
    return journey_config(tmp_path, database_url, http__public_base_url=PUBLIC,
                          journeys__review_link_base_url=PUBLIC,
                          email__unsubscribe_mailto="unsubscribe@plumbing.example", **extra)


def _business(db: Database, **columns: Any) -> uuid.UUID:
    business = make_business(db, name="Demo Plumbing")
    values = {"postal_address": ADDRESS, "email_from_address": "reviews@plumbing.example",
              "email_reply_to": "owner@plumbing.example", **columns}
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE businesses SET postal_address = :postal_address, "
                             "email_from_address = :email_from_address, "
                             "email_reply_to = :email_reply_to WHERE id = :id"),
                     {"id": business, **values})
    return business


def _smtp_config(tmp_path: Path, database_url: str, port: int) -> Config:
    return _config(tmp_path, database_url, channels__email="smtp", smtp__host="127.0.0.1",
                   smtp__port=port, smtp__starttls=False,
                   smtp__from_address="reviews@plumbing.example")


def _first_email_sent(db: Database, config: Config, business: uuid.UUID, *, plugins: Any = None,
                      name: str = "Ada Lovelace", email: str = "ada@example.com",
                      steps: list[dict[str, Any]] | None = None) -> uuid.UUID:
    """A customer enrolled in an email sequence whose first step went out; its id."""
    customer = make_customer(db, business, name=name, email=email)
    apply(db, business, sequence(steps=steps or [EMAIL_STEP]))
    add_event(db, business, customer)
    route_events(db, config, now=NOW)
    assert execute_due_steps(db, config, plugins or load_plugins(), now=NOW).sent == 1
    return customer


def _send_one(db: Database, config: Config, business: uuid.UUID, name: str) -> EmailMessage:
    _first_email_sent(db, config, business, name=name)
    (eml,) = (config.resolve_path("channels.outbox_dir") / str(business)).glob("*.eml")
    parsed = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_rendered_email_has_the_headers_and_parts_providers_require(
        db: Database, database_url: str, tmp_path: Path) -> None:
    config = _config(tmp_path, database_url)
    business = _business(db)
    msg = _send_one(db, config, business, '<script>alert("x")</script> Lovelace')

    # Date: when it was written (the send), not when the step fell due
    assert abs(parsedate_to_datetime(msg["Date"]) - datetime.now(UTC)) < timedelta(minutes=5)
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith(
        "@plumbing.example>")
    assert msg["From"].addresses[0].addr_spec == "reviews@plumbing.example"
    assert msg["From"].addresses[0].display_name == "Demo Plumbing"
    assert msg["Reply-To"].addresses[0].addr_spec == "owner@plumbing.example"
    assert msg["To"].addresses[0].addr_spec == "ada@example.com"

    # RFC 2369 + RFC 8058: the https one-click URL first, the mailto after it
    targets = [t.strip().strip("<>") for t in str(msg["List-Unsubscribe"]).split(",")]
    assert targets[0].startswith(f"{PUBLIC}/u/") and len(targets[0]) > len(PUBLIC) + 30
    assert targets[1].startswith("mailto:unsubscribe@plumbing.example?subject=")
    assert targets[0].rsplit("/", 1)[1] in unquote(targets[1])  # the same token
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    assert msg.get_content_type() == "multipart/alternative"
    text_part, html_part = msg.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    text, html = text_part.get_content(), html_part.get_content()
    # text: the values as they are; html: every value and the template's own text escaped
    assert 'Hi <script>alert("x")</script> & welcome <back>,' in text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; welcome &lt;back&gt;," in html
    review = text.split("Leave us a review: ")[1].split()[0]
    assert review.startswith(f"{PUBLIC}/r/")
    assert f'<a href="{review}">' in html
    for part in (text, html):  # CAN-SPAM: postal address and the opt-out in every email
        assert ADDRESS in part and targets[0] in part
    assert html.lstrip().startswith("<!DOCTYPE html>") and "</html>" in html


def test_header_values_cannot_carry_new_headers(db: Database, database_url: str,
                                                tmp_path: Path) -> None:
    config = _config(tmp_path, database_url)
    business = _business(db, email_reply_to="owner@plumbing.example\r\nBcc: all@victims.example")
    msg = _send_one(db, config, business, "Ada\r\nBcc: evil@attacker.example")
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Thanks Ada Bcc:!"  # first name "Ada\r\nBcc:", folded into one line


def test_business_without_its_own_sender_uses_the_deployment_one(
        db: Database, database_url: str, tmp_path: Path) -> None:
    config = _config(tmp_path, database_url, smtp__from_address="hello@blipp.example",
                     smtp__reply_to="support@blipp.example")
    business = _business(db, email_from_address=None, email_reply_to=None)
    msg = _send_one(db, config, business, "Ada Lovelace")
    assert msg["From"].addresses[0].addr_spec == "hello@blipp.example"
    assert msg["Reply-To"].addresses[0].addr_spec == "support@blipp.example"


def test_smtp_delivers_the_same_message(smtp_server: tuple[Inbox, int],  # noqa: F811
                                        db: Database, database_url: str,
                                        tmp_path: Path) -> None:
    inbox, port = smtp_server
    config = _smtp_config(tmp_path, database_url, port)
    _first_email_sent(db, config, _business(db))
    (envelope,) = inbox.messages
    assert envelope.mail_from == "reviews@plumbing.example"
    msg = message_from_bytes(envelope.original_content, policy=policy.default)
    assert msg["Date"] and msg["Message-ID"] and msg["List-Unsubscribe-Post"]
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(("settings", "error"), [
    ({}, "needs smtp.from_address"),
    ({"smtp__from_address": "no-reply@localhost"}, "not on a domain mail can come from"),
    ({"smtp__from_address": "reviews@blipp.example", "http__public_base_url": ""},
     "needs http.public_base_url"),
])
def test_smtp_without_a_real_sender_or_unsubscribe_url_refuses_to_start(
        settings: dict[str, str], error: str, tmp_path: Path) -> None:
    config = journey_config(tmp_path, "postgresql://unused", channels__email="smtp",
                            http__public_base_url=PUBLIC).with_values(**settings)
    with pytest.raises(ConfigError, match=error):
        check_channels(config)


def test_outbox_channels_are_announced(tmp_path: Path) -> None:
    config = journey_config(tmp_path, "postgresql://unused")
    (warning,) = check_channels(config)
    assert "EMAIL and SMS go to the OUTBOX" in warning and "NOT SENT" in warning
    ok = config.with_values(channels__email="smtp", smtp__from_address="reviews@blipp.example",
                            http__public_base_url=PUBLIC, channels__sms="twilio")
    assert check_channels(ok) == []


def test_a_business_email_identity_is_set_from_the_command_line(
        db: Database, cli_env: dict[str, str]) -> None:
    business = make_business(db, name="Demo Plumbing")
    refused = cli(cli_env, "businesses", "email", str(business), "--from-address",
                   "no-reply@localhost")
    assert refused.returncode == 1 and "not on a domain mail can come from" in refused.stderr
    out = cli(cli_env, "businesses", "email", str(business), "--postal-address",
               "12 Pipe Street,\nSpringfield", "--from-address", "reviews@plumbing.example",
               "--json")
    assert out.returncode == 0, out.stderr
    identity = json.loads(out.stdout)
    assert identity["postal_address"] == "12 Pipe Street, Springfield"  # one line
    assert identity["email_from_address"] == "reviews@plumbing.example"
    assert identity["email_reply_to"] is None
    cleared = set_sender_identity(db, business, from_address="", reply_to="me@plumbing.example")
    assert cleared["email_from_address"] is None and cleared["postal_address"]
    assert cleared["email_reply_to"] == "me@plumbing.example"



def test_the_header_cache_changes_no_byte(tmp_path: Path) -> None:
    """The same messages built with the stock policy.SMTP and with the caching one, each
    twice (a cached header reused), are identical but for the random MIME boundary."""
    from blippsync.channels import Message
    from blippsync.channels import email as composer

    config = journey_config(tmp_path, "postgresql://unused")
    names = ["Demo Plumbing", "Café Zoë & Söhne", 'O\'Brien, "The" Plumber', "A" * 90]
    subjects = ["How did we do?", "Ça va? ✨ " * 12, "x" * 200, "a " * 80]
    messages = [Message(kind="email", send_key=f"k{i}:0", business_id="b", customer_id="c",
                        business_name=names[i % 4], to="a@example.com",
                        subject=subjects[i // 4], body="Hello é\n", html="<p>Hello é</p>",
                        reply_to="r@example.com" if i % 2 else None,
                        headers={"List-Unsubscribe": "<https://x.example/u/abc>",
                                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
                for i in range(16)]
    now = datetime(2025, 6, 10, tzinfo=UTC)

    def built(policy_: Any) -> list[bytes]:
        original = composer.POLICY
        composer.POLICY = policy_
        try:
            return [re.sub(rb"=+\d+==", b"B", bytes(composer.build_email(m, config, now=now)))
                    for m in messages]
        finally:
            composer.POLICY = original

    stock = built(policy.SMTP)
    assert built(composer.POLICY) == stock and built(composer.POLICY) == stock
    parsed = message_from_bytes(stock[0], policy=policy.default)
    assert [part["MIME-Version"] for part in parsed.iter_parts()] == [None, None]


class BounceReader:
    """A bounce-processing plugin: reports the DSNs its 'mailbox' holds, once."""

    def __init__(self) -> None:
        self.mailbox: list[dict[str, str]] = []
        self.changed: list[bool] = []

    @hookimpl
    def collect_delivery_reports(self, config: Config, report: Any) -> None:
        while self.mailbox:
            self.changed.append(report(**self.mailbox.pop()))


def test_a_bounce_plugin_marks_the_email_failed(smtp_server: tuple[Inbox, int],  # noqa: F811
                                                db: Database, database_url: str,
                                                tmp_path: Path) -> None:
    inbox, port = smtp_server
    config = _smtp_config(tmp_path, database_url, port)
    bounces = BounceReader()
    plugins = load_plugins(extra=[("bounces", bounces)])
    customer = _first_email_sent(db, config, _business(db), plugins=plugins,
                                 email="gone@example.com",
                                 steps=[EMAIL_STEP, {**EMAIL_STEP, "delay_minutes": 60}])
    message_id = message_from_bytes(inbox.messages[0].original_content)["Message-ID"]
    bounces.mailbox.append({"provider_id": message_id, "status": "failed", "error_code": "5.1.1",
                            "error": "550 5.1.1 no such user"})
    execute_due_steps(db, config, plugins, now=NOW + timedelta(minutes=1))
    assert bounces.changed == [True]
    (row,) = rows(db, "SELECT status, error_code, last_error FROM review_requests "
                      "WHERE customer_id = :c AND step_order = 0", c=customer)
    assert tuple(row) == ("failed", "5.1.1", "550 5.1.1 no such user")
