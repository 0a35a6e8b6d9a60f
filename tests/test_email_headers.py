"""Line breaks in anything that becomes a header (a subject template, a business name any
member may edit, an address) never add a header: both the outbox file and the message the
SMTP channel hands over parse back, with the email package's own parser, to exactly the
headers we wrote."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from blippsync.channels import EMAIL, Message
from blippsync.channels.email import build_email, header_value
from blippsync.channels.outbox import OutboxChannel
from blippsync.config import load_config

HOSTILE = [
    ("subject", "Thanks!\r\nBcc: attacker@evil.test"),
    ("subject", "Thanks!\nBcc: attacker@evil.test\n\nforged body"),
    ("business_name", "Tenant B\r\nBcc: attacker@evil.test"),
    ("business_name", "Tenant B\u2028Bcc: attacker@evil.test"),
    ("to", "ann@example.test\r\nBcc: attacker@evil.test"),
    ("subject", "Caf\u00e9 \u2014 merci\rBcc: attacker@evil.test"),
]
HEADERS = {"from", "to", "subject", "date", "message-id", "reply-to", "list-unsubscribe",
           "list-unsubscribe-post", "x-blippsync-send-key", "mime-version", "content-type",
           "content-transfer-encoding"}


def _message(field: str, value: str) -> Message:
    base = {"kind": EMAIL, "send_key": "e1:0", "business_id": "b1", "business_name": "Shop",
            "customer_id": "c1", "to": "ann@example.test", "body": "Hello", "subject": "Hi"}
    return Message(**{**base, field: value})


def _check(parsed: email.message.Message, field: str, value: str) -> None:
    names = {k.lower() for k in parsed}
    assert names <= HEADERS and "bcc" not in names, names
    assert len(parsed.get_all("Subject")) == 1 and len(parsed.get_all("To")) == 1
    if field == "subject":
        assert str(parsed["Subject"]) == header_value(value)
        assert "Bcc: attacker@evil.test" in str(parsed["Subject"])  # kept, as text


@pytest.mark.parametrize("field, value", HOSTILE)
def test_outbox_email_keeps_its_headers(tmp_path: Path, field: str, value: str) -> None:
    config = load_config(None, environ={"BLIPPSYNC_CHANNELS_OUTBOX_DIR": str(tmp_path)})
    delivery = OutboxChannel().send(_message(field, value), config)
    parsed = email.message_from_bytes(Path(delivery.provider_id).read_bytes(),
                                      policy=email.policy.default)
    _check(parsed, field, value)
    assert parsed.get_content().strip() == "Hello"


@pytest.mark.parametrize("field, value", HOSTILE)
def test_smtp_message_keeps_its_headers(field: str, value: str) -> None:
    config = load_config(None, environ={})
    built = build_email(_message(field, value), config)
    parsed = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    _check(parsed, field, value)


def test_header_value_folds_every_break_and_control_character() -> None:
    assert header_value("a\r\n\tb\x00c\x1bd\u2028e\x85f") == "a b c d e f"
    assert header_value(None) == "" and header_value("  plain  ") == "plain"
