"""A second line of defence for secrets: anything token-shaped is masked before it is
printed or logged. The first line is never putting secrets into messages at all."""

from __future__ import annotations

import logging
import re

MASK = "[redacted]"
_PATTERNS = (
    # key=value / "key": "value" pairs whose key names a secret
    re.compile(r"""(?i)((?:access|refresh|id)_token|token|secret|password|passwd|api_key|apikey|"""
               r"""authorization|client_secret|verifier)(["']?\s*[:=]\s*["']?)(?:bearer\s+|basic\s+)?"""
               r"""([^\s"'&,;}]{4,})"""),
    re.compile(r"(?i)\b(bearer|basic)\s+([A-Za-z0-9._~+/=-]{8,})"),
    # JWTs
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}"),
    # Intuit refresh tokens (RT1-...) and our own ciphertexts
    re.compile(r"\bRT1-[A-Za-z0-9-]{10,}"),
    # passwords in URLs
    re.compile(r"(://[^:/@\s]+):([^@\s]+)@"),
)
_extra_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask this exact value wherever it appears from now on (decrypted tokens, keys)."""
    if value and len(value) >= 6:
        _extra_secrets.add(value)


def redact(text: str) -> str:
    for secret in sorted(_extra_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _PATTERNS[2].sub(MASK, text)
    text = _PATTERNS[3].sub(MASK, text)
    text = _PATTERNS[4].sub(lambda m: f"{m.group(1)}:***@", text)
    return text


class RedactingFilter(logging.Filter):
    """Logging filter: formats the record's message once and masks secrets in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not kill the caller
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
