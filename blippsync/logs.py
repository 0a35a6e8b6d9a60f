"""Logging setup: readable text on a terminal, JSON lines elsewhere, secrets masked.

Context (business, connection, run ids) travels in a contextvar and lands on every line.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from blippsync.config import Config
from blippsync.errors import ConfigError
from blippsync.redaction import RedactingFilter

# None until a log_context is entered: a mutable default would be one dict shared by every context.
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_context", default=None)


def _current() -> dict[str, Any]:
    return _context.get() or {}


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach fields (business_id=..., connection_id=..., run_id=...) to every log line inside."""
    token = _context.set({**_current(), **{k: str(v) for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.context = _current()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "context", {}),
        }
        if record.exc_info:
            line["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = getattr(record, "context", {})
        suffix = (" [" + " ".join(f"{k}={v}" for k, v in ctx.items()) + "]") if ctx else ""
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        text = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}{suffix}"
        if record.exc_info:
            text += "\n" + (record.exc_text or self.formatException(record.exc_info))
        return text


def configure_logging(config: Config, *, debug: bool = False) -> None:
    level = "DEBUG" if debug else str(config["logging.level"]).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"{config.path or 'environment'}: 'logging.level' must be one of "
                          f"DEBUG, INFO, WARNING, ERROR, got {level!r}")
    fmt = config["logging.format"]
    if fmt not in ("auto", "text", "json"):
        raise ConfigError(f"{config.path or 'environment'}: 'logging.format' must be auto, text "
                          f"or json, got {fmt!r}")
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_blippsync", False):
            root.removeHandler(old)
    handler._blippsync = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "pgserver", "sqlalchemy", "filelock", "fasteners"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
