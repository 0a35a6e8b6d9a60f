"""Building the RFC 5322 message both the outbox and SMTP channels deliver."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from blippsync.channels import Message
from blippsync.config import Config

DEFAULT_FROM = "no-reply@localhost"


def build_email(message: Message, config: Config) -> EmailMessage:
    """Plain-text email; the Message-ID carries the send key so a provider can dedupe too."""
    email = EmailMessage()
    sender = config["smtp.from_address"] or DEFAULT_FROM
    email["From"] = formataddr((message.business_name, sender))
    email["To"] = message.to
    email["Subject"] = message.subject or ""
    domain = sender.rpartition("@")[2] or "localhost"
    email["Message-ID"] = make_msgid(idstring=message.send_key.replace(":", "."), domain=domain)
    email["X-Blippsync-Send-Key"] = message.send_key
    email.set_content(message.body)
    return email
