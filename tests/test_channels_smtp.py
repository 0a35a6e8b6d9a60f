"""The smtp channel against a real SMTP server (aiosmtpd) started by the test."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
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

from blippsync.channels import DeliveryFailed, Message
from blippsync.channels.smtp import SmtpChannel
from blippsync.config import Config
from blippsync.database import Database
from blippsync.journeys import execute_due_steps, route_events
from blippsync.plugins import load_plugins

PASSWORD = "s3cret-smtp-pass"


class Inbox:
    """aiosmtpd handler: keeps what it receives; refuses addresses it is told to."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


def _auth(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_auth,
                            auth_require_tls=False)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _free_port() -> int:
    with socket.socket() as sock:  # a port nobody listens on (until someone binds it)
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, database_url: str, port: int, **extra: Any) -> Config:
    return journey_config(tmp_path, database_url, smtp__host="127.0.0.1", smtp__port=port,
                          smtp__starttls=False, smtp__from_address="reviews@plumbing.example",
                          channels__email="smtp", **extra)


def _message(to: str = "ada@example.com") -> Message:
    return Message(kind="email", send_key="enr-1:0", business_id="b", business_name="Demo Plumbing",
                   customer_id="c", to=to, subject="How did we do, Ada? ✨",
                   body="Leave us a review: https://g.page/r/x/review")


def test_delivers_to_a_real_smtp_server(smtp_server: tuple[Inbox, int], tmp_path: Path) -> None:
    inbox, port = smtp_server
    config = _config(tmp_path, "postgresql://unused", port)
    delivery = SmtpChannel().send(_message(), config)
    (envelope,) = inbox.messages
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert envelope.mail_from == "reviews@plumbing.example"
    email = message_from_bytes(envelope.original_content)
    assert str(email["Subject"]) != ""  # encoded; decode to compare
    from email.header import decode_header, make_header
    assert str(make_header(decode_header(email["Subject"]))) == "How did we do, Ada? ✨"
    assert email["X-Blippsync-Send-Key"] == "enr-1:0"
    assert email["Message-ID"] == delivery.provider_id
    assert email.get_payload(decode=True).decode().strip() == \
        "Leave us a review: https://g.page/r/x/review"


def test_login_and_refusals(smtp_server: tuple[Inbox, int], tmp_path: Path) -> None:
    inbox, port = smtp_server
    config = _config(tmp_path, "postgresql://unused", port, smtp__username="blipp",
                     smtp__password=PASSWORD)
    SmtpChannel().send(_message(), config)
    assert len(inbox.messages) == 1

    with pytest.raises(DeliveryFailed) as bad_login:
        SmtpChannel().send(_message(), config.with_values(smtp__password="wrong-password"))
    assert not bad_login.value.retryable and "wrong-password" not in str(bad_login.value)

    inbox.refuse = {"gone@example.com": "550 5.1.1 no such user",
                    "full@example.com": "452 4.2.2 mailbox full"}
    with pytest.raises(DeliveryFailed) as gone:
        SmtpChannel().send(_message("gone@example.com"), config)
    assert not gone.value.retryable
    with pytest.raises(DeliveryFailed) as full:
        SmtpChannel().send(_message("full@example.com"), config)
    assert full.value.retryable


def test_unreachable_server_is_a_retryable_failure(tmp_path: Path) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        SmtpChannel().send(_message(), _config(tmp_path, "postgresql://unused", _free_port()))
    assert failed.value.retryable


def test_journey_email_step_through_smtp(smtp_server: tuple[Inbox, int], db: Database,
                                         database_url: str, tmp_path: Path) -> None:
    inbox, port = smtp_server
    business = make_business(db, name="Demo Plumbing")
    apply(db, business, sequence(steps=[{"type": "email", "purpose": "review",
                                         "subject": "Thanks {{ customer.first_name }}",
                                         "body": "Review: {{ review_link }}"}]))
    customer = make_customer(db, business, email="grace@example.com", name="Grace Hopper")
    add_event(db, business, customer)
    config = _config(tmp_path, database_url, port)
    route_events(db, config, now=noon_utc())
    summary = execute_due_steps(db, config, load_plugins(), now=noon_utc())
    assert summary.sent == 1
    (envelope,) = inbox.messages
    email = message_from_bytes(envelope.original_content)
    assert envelope.rcpt_tos == ["grace@example.com"] and email["Subject"] == "Thanks Grace"
    assert email["From"] == "Demo Plumbing <reviews@plumbing.example>"
    (ledger,) = rows(db, "SELECT status, metadata ->> 'provider_id' AS p, "
                         "metadata ->> 'channel_plugin' AS via FROM public.review_requests")
    assert (ledger.status, ledger.p, ledger.via) == ("sent", email["Message-ID"], "smtp")
    assert execute_due_steps(db, config, load_plugins(),
                             now=noon_utc() + timedelta(days=1)).sent == 0
