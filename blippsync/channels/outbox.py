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
from pathlib import Path

from blippsync.channels import EMAIL, SMS, Delivery, DeliveryFailed, Message
from blippsync.channels.email import build_email
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
        content = (bytes(build_email(message, config)) if message.kind == EMAIL
                   else f"To: {message.to}\n\n{message.body}\n".encode())
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

