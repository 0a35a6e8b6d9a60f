"""Building the RFC 5322 message both the outbox and SMTP channels deliver."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from blippsync.channels import Message
from blippsync.config import Config

DEFAULT_FROM = "no-reply@localhost"
# CR, LF and every other control character (and the Unicode line separators): in a header
# value they would end the header and start another (Bcc: ...).
_BREAKS = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def header_value(text: str | None) -> str:
    """A header value that stays one header: every run of line breaks or other control
    characters folds into one space. Use it on anything a template, a business or a
    customer can influence (subject, display names, addresses)."""
    return _BREAKS.sub(" ", text or "").strip()


def build_email(message: Message, config: Config) -> EmailMessage:
    """Plain-text email; the Message-ID carries the send key so a provider can dedupe too."""
    email = EmailMessage()
    sender = config["smtp.from_address"] or DEFAULT_FROM
    email["From"] = formataddr((header_value(message.business_name), header_value(sender)))
    email["To"] = header_value(message.to)
    email["Subject"] = header_value(message.subject)
    domain = sender.rpartition("@")[2] or "localhost"
    email["Message-ID"] = make_msgid(idstring=message.send_key.replace(":", "."), domain=domain)
    email["X-Blippsync-Send-Key"] = message.send_key
    email.set_content(message.body)
    return email
