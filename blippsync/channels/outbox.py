"""The outbox channel: each message becomes a file (and a line in outbox.jsonl).

The default, so the embedded quickstart shows real rendered output, and the channel the
exactly-once tests and benchmarks count on: a file is created with O_EXCL under the send
key, so a second delivery of one key fails loudly instead of overwriting the first.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from email.header import Header
from email.utils import formataddr
from pathlib import Path

from blippsync.channels import EMAIL, SMS, Delivery, DeliveryFailed, Message
from blippsync.channels.email import DEFAULT_FROM, header_value
from blippsync.config import Config

log = logging.getLogger(__name__)
LOG_NAME = "outbox.jsonl"


class OutboxChannel:
    name = "outbox"
    kinds = frozenset({EMAIL, SMS})

    def __init__(self) -> None:
        self._made: set[Path] = set()
        self._logs: dict[Path, int] = {}  # outbox.jsonl descriptors, O_APPEND, kept open

    def _log_fd(self, root: Path) -> int:
        fd = self._logs.get(root)
        if fd is None:
            fd = os.open(root / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._logs[root] = fd
        return fd

    def send(self, message: Message, config: Config) -> Delivery:
        root = config.resolve_path("channels.outbox_dir")
        folder = root / message.business_id
        if folder not in self._made:
            folder.mkdir(parents=True, exist_ok=True)
            self._made.add(folder)
        suffix = "eml" if message.kind == EMAIL else "sms.txt"
        path = folder / f"{message.send_key.replace(':', '-')}.{suffix}"
        content = (_email_text(message, config) if message.kind == EMAIL
                   else f"To: {message.to}\n\n{message.body}\n").encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, content)
            finally:
                os.close(fd)
        except FileExistsError:
            raise DeliveryFailed(f"{path} already exists: send key delivered twice",
                                 retryable=False) from None
        except OSError as exc:
            raise DeliveryFailed(f"cannot write {path}: {exc.strerror}", retryable=True) from None
        line = json.dumps({"at": datetime.now(UTC).isoformat(), "send_key": message.send_key,
                           "kind": message.kind, "to": message.to, "file": str(path)})
        os.write(self._log_fd(root), (line + "\n").encode())  # one write: lines never interleave
        log.info("outbox: %s to %s written to %s", message.kind, message.to, path)
        return Delivery(provider_id=str(path))


def _email_text(message: Message, config: Config) -> str:
    """A readable .eml: headers written directly (the email package costs ~2 ms a message,
    more than the whole send budget); non-ASCII subjects RFC 2047-encoded."""
    subject = header_value(message.subject)
    if not subject.isascii():
        subject = Header(subject, "utf-8").encode()
    sender = formataddr((header_value(message.business_name),
                         header_value(config["smtp.from_address"]) or DEFAULT_FROM),
                        charset="utf-8")
    return (f"From: {sender}\nTo: {header_value(message.to)}\nSubject: {subject}\n"
            f"Message-ID: <{message.send_key.replace(':', '.')}@blippsync>\n"
            f"X-Blippsync-Send-Key: {message.send_key}\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
            f"{message.body}\n")
