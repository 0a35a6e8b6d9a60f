"""Stripe event envelopes as Stripe documents them (https://docs.stripe.com/api/events/object),
and the Stripe-Signature header computed with openssl, an implementation independent of the
connector's."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from fake_stripe import subscription


def event(kind: str, obj: dict[str, Any], *, created: int, event_id: str) -> bytes:
    return json.dumps({
        "id": event_id, "object": "event", "api_version": "2024-06-20", "created": created,
        "data": {"object": obj, "previous_attributes": {}}, "livemode": False,
        "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
        "type": kind}).encode()


def subscription_event(kind: str, sub_id: str, customer: str, status: str, *, created: int,
                       event_id: str) -> bytes:
    return event(kind, subscription(sub_id, customer, status, created - 3600),
                 created=created, event_id=event_id)


def payment_failed(invoice_id: str, customer: str, sub_id: str | None, *, created: int,
                   event_id: str, new_shape: bool = False) -> bytes:
    invoice: dict[str, Any] = {
        "id": invoice_id, "object": "invoice", "customer": customer, "status": "open",
        "amount_due": 4900, "attempt_count": 1, "billing_reason": "subscription_cycle",
        "currency": "usd", "livemode": False}
    if new_shape:  # API 2025-03-31.basil and later
        invoice["parent"] = {"type": "subscription_details", "quote_details": None,
                             "subscription_details": {"metadata": {}, "subscription": sub_id}}
    else:
        invoice["subscription"] = sub_id
    return event("invoice.payment_failed", invoice, created=created, event_id=event_id)


def openssl_signature(secret: str, timestamp: int, payload: bytes) -> str:
    signed = f"{timestamp}.".encode() + payload
    out = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", secret], input=signed,
                         capture_output=True, check=True).stdout.decode()
    return out.strip().rsplit(" ", 1)[-1]


def header(secret: str, timestamp: int, payload: bytes, *extra_v1: str) -> str:
    parts = [f"t={timestamp}", f"v1={openssl_signature(secret, timestamp, payload)}"]
    parts += [f"v1={v}" for v in extra_v1]
    return ",".join(parts)
