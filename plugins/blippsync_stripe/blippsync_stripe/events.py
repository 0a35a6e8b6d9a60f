"""Stripe event envelopes -> webhook notices, and notices -> billing status records.

An event (`{"id": "evt_...", "object": "event", "type": ..., "created": <unix>,
"data": {"object": {...}}}`) names the customer whose business it concerns; the notice's
account id is that customer id, which is how blippsync finds the business's connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from blippsync.connector import WebhookNotice
from blippsync.records import SubscriptionStatus

SUBSCRIPTION_EVENTS = frozenset({"customer.subscription.created",
                                 "customer.subscription.updated",
                                 "customer.subscription.deleted"})
PAYMENT_FAILED = "invoice.payment_failed"


def notices_from(body: bytes) -> list[WebhookNotice]:
    """The billing change one delivery announces (none for event types we do not use)."""
    event = json.loads(body)
    kind = event.get("type")
    obj = (event.get("data") or {}).get("object") or {}
    if kind in SUBSCRIPTION_EVENTS:
        subscription = obj.get("id")
        # a deleted subscription is canceled (its object says so; older API versions too)
        status = "canceled" if kind.endswith(".deleted") else obj.get("status")
    elif kind == PAYMENT_FAILED:
        subscription = _invoice_subscription(obj)
        status = "past_due"
    else:
        return []
    customer = _id(obj.get("customer"))
    if not customer or not subscription or not isinstance(status, str):
        return []
    created = int(event["created"])
    return [WebhookNotice(account_id=customer, entity="subscription", entity_id=subscription,
                          operation=kind, occurred_at=datetime.fromtimestamp(created, UTC),
                          delivery_id=str(event["id"]),
                          extra={"status": status, "livemode": bool(event.get("livemode"))})]


def statuses_from(notices: Sequence[WebhookNotice], customer: str) -> Iterator[SubscriptionStatus]:
    for notice in notices:
        if notice.account_id != customer or notice.occurred_at is None:
            continue
        yield SubscriptionStatus(status=str(notice.extra["status"]), as_of=notice.occurred_at,
                                 subscription_id=notice.entity_id,
                                 location=f"stripe event {notice.delivery_id} ({notice.operation})")


def _invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills: `subscription` (API versions before 2025-03-31),
    or `parent.subscription_details.subscription` (later ones); None for a one-off invoice."""
    legacy = _id(invoice.get("subscription"))
    if legacy:
        return legacy
    details = ((invoice.get("parent") or {}).get("subscription_details") or {})
    return _id(details.get("subscription"))


def _id(value: Any) -> str | None:
    """An id, whether the field holds the id or the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None
