"""Stripe's webhook signature scheme (https://docs.stripe.com/webhooks#verify-manually).

`Stripe-Signature: t=<unix seconds>,v1=<hex>,v1=<hex>,...` where each v1 is
HMAC-SHA256(endpoint secret, "<t>.<raw body>"). During a secret roll Stripe sends one v1
per valid secret. Every comparison is constant-time and none ends the loop early.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

HEADER = "stripe-signature"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_SIGNATURES = 8  # a header stuffed with v1 values costs no more than this many HMACs


def parse_header(header: str) -> tuple[int | None, list[str]]:
    """(timestamp, v1 signatures); other schemes (v0) are ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and timestamp is None and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value.strip().lower())
    return timestamp, signatures[:MAX_SIGNATURES]


def expected_signature(secret: str, timestamp: int, payload: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload,
                    hashlib.sha256).hexdigest()


def verify(header: str, payload: bytes, secrets: Sequence[str], *, now: float,
           tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """Does any v1 signature match any secret, with t within the tolerance of `now`?"""
    timestamp, signatures = parse_header(header or "")
    if timestamp is None or not signatures or not secrets:
        return False
    if tolerance_seconds > 0 and abs(now - timestamp) > tolerance_seconds:
        return False
    matched = False
    for secret in secrets:
        expected = expected_signature(secret, timestamp, payload)
        for signature in signatures:
            matched |= hmac.compare_digest(expected, signature)
    return matched
