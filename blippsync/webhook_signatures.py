"""Checking webhook signatures over the raw body, for connectors.

QuickBooks and Jobber (like most providers) send base64 of an HMAC-SHA256 of the exact
bytes received, keyed with a shared secret; the check must use those bytes (never a
re-serialised body) and compare in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case (plain dicts in tests, Starlette's in the server)."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def verify_hmac_sha256_b64(headers: Mapping[str, str], name: str, body: bytes, key: str) -> bool:
    """True only for a present, well-formed signature in header `name` made with `key`."""
    given = header(headers, name)
    if not key or not given:
        return False
    try:
        received = base64.b64decode(given.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(received, expected)
