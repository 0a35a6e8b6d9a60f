"""Webhook signers for tests, written from the providers' documentation rather than taken
from the code under test. tests/test_webhook_signatures.py pins each one, and the
production verifiers, to the providers' published vectors."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def hmac_sha256_base64(raw_body: bytes, secret: str) -> str:
    """Intuit's `intuit-signature` (key: the verifier token) and Jobber's
    `X-Jobber-Hmac-SHA256` (key: the app's client secret) over the raw body."""
    mac = hmac.new(secret.encode("utf-8"), msg=raw_body, digestmod=hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def twilio_sha1(url: str, fields: Iterable[tuple[str, str]], auth_token: str) -> str:
    """X-Twilio-Signature: the full URL, then each distinct form field name+value in sorted
    order, HMAC-SHA1 keyed by the auth token, base64."""
    signed = url
    for name, value in sorted(set(fields)):
        signed += f"{name}{value}"
    mac = hmac.new(auth_token.encode("utf-8"), msg=signed.encode("utf-8"), digestmod=hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")
