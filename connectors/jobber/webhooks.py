"""Jobber webhook deliveries: signature check and parsing into notices.

The signature is `X-Jobber-Hmac-SHA256`: base64 of HMAC-SHA256 over the raw body, keyed
with the app's OAuth client secret, compared in constant time. There is no timestamp in
the scheme and delivery is at least once, so a notice carries a delivery id made from
topic, item and time for the receiver to deduplicate.

The body is minimal (`topic`, `accountId`, `itemId`, `occurredAt`, spelled `occuredAt`
for apps created before 2023-12-08; form-encoded for apps before 2022-04-11). There is no
JOB_COMPLETE or INVOICE_PAID topic: jobs, visits, invoices and payments become targeted
fetches that decide whether a completion or payment happened.

APP_DISCONNECT becomes a notice with entity `connection` and operation `disconnected`:
the core marks the connection whose account_id matches as disconnected (no fetch).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from blippsync.connector import WebhookNotice
from blippsync.errors import InputError
from blippsync.webhook_signatures import header, verify_hmac_sha256_b64
from connectors.jobber.mapping import parse_time

SIGNATURE_HEADER = "X-Jobber-Hmac-SHA256"
CONNECTION_ENTITY = "connection"
DISCONNECTED = "disconnected"
# topic prefix -> entity name used in notices (and by fetch)
_ENTITIES = {"CLIENT": "client", "JOB": "job", "VISIT": "visit", "INVOICE": "invoice",
             "PAYMENT": "payment"}
_VISIT_OPERATIONS = {"complete", "update"}  # a visit matters once it is completed




def verify(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """True only for a present, well-formed signature made with `secret` over `body`."""
    return verify_hmac_sha256_b64(headers, SIGNATURE_HEADER, body, secret)


def parse(headers: Mapping[str, str], body: bytes) -> list[WebhookNotice]:
    event = _event(headers, body)
    topic = str(event.get("topic") or "").upper()
    account = str(event.get("accountId") or "")
    item = str(event.get("itemId") or "")
    when_raw = event.get("occurredAt") or event.get("occuredAt")
    if not topic or not account:
        raise InputError("Jobber webhook: topic and accountId are required")
    occurred = parse_time(when_raw)
    extra = {"topic": topic, "app_id": event.get("appId")}
    delivery = f"jobber:{account}:{topic}:{item}:{when_raw or ''}"
    if topic == "APP_DISCONNECT":
        return [WebhookNotice(account_id=account, entity=CONNECTION_ENTITY, entity_id=account,
                              operation=DISCONNECTED, occurred_at=occurred,
                              delivery_id=delivery, extra=extra)]
    prefix, _, operation = topic.rpartition("_")
    entity = _ENTITIES.get(prefix)
    operation = operation.lower()
    if entity is None or not item or (entity == "visit" and operation not in _VISIT_OPERATIONS):
        return []  # a topic that cannot change customers or start a journey
    return [WebhookNotice(account_id=account, entity=entity, entity_id=item,
                          operation=operation, occurred_at=occurred, delivery_id=delivery,
                          extra=extra)]


def _event(headers: Mapping[str, str], body: bytes) -> Mapping[str, Any]:
    content_type = (header(headers, "Content-Type") or "").lower()
    text = body.decode("utf-8", errors="replace")
    if "x-www-form-urlencoded" in content_type or (text and not text.lstrip().startswith("{")):
        fields = dict(parse_qsl(text))
        return {k[len("data[webHookEvent]["):-1]: v for k, v in fields.items()
                if k.startswith("data[webHookEvent][") and k.endswith("]")}
    try:
        payload = json.loads(text)
    except ValueError:
        raise InputError("Jobber webhook: body is not JSON") from None
    event = ((payload or {}).get("data") or {}).get("webHookEvent") if isinstance(payload, dict) \
        else None
    if not isinstance(event, dict):
        raise InputError("Jobber webhook: no data.webHookEvent in the body")
    return event

