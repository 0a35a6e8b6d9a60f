"""Intuit webhooks: signature check over the raw body, and both payload shapes (the
legacy `eventNotifications` object and the CloudEvents array) turned into notices."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from blippsync.connector import WebhookNotice
from blippsync.errors import InputError
from blippsync.webhook_signatures import verify_hmac_sha256_b64
from connectors.quickbooks.mapping import parse_time

SIGNATURE_HEADER = "intuit-signature"
_OPERATIONS = {"created": "Create", "updated": "Update", "deleted": "Delete", "merged": "Merge",
               "voided": "Void", "emailed": "Emailed"}
_ENTITIES = {"customer": "Customer", "invoice": "Invoice", "payment": "Payment",
             "creditmemo": "CreditMemo", "salesreceipt": "SalesReceipt"}




def verify(headers: Mapping[str, str], body: bytes, verifier_token: str) -> bool:
    """HMAC-SHA256 of the raw body keyed with the verifier token, compared in constant time."""
    return verify_hmac_sha256_b64(headers, SIGNATURE_HEADER, body, verifier_token)


def parse(body: bytes) -> list[WebhookNotice]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError("quickbooks webhook: body is not JSON") from None
    if isinstance(payload, list):
        return [n for n in (_cloud_event(e) for e in payload if isinstance(e, Mapping)) if n]
    if isinstance(payload, Mapping) and "eventNotifications" in payload:
        return _legacy(payload)
    raise InputError("quickbooks webhook: neither an eventNotifications object nor a "
                     "CloudEvents array")


def _legacy(payload: Mapping[str, Any]) -> list[WebhookNotice]:
    notices = []
    for note in payload.get("eventNotifications") or []:
        realm = str(note.get("realmId") or "")
        for e in (note.get("dataChangeEvent") or {}).get("entities") or []:
            extra = {"deleted_id": str(e["deletedId"])} if e.get("deletedId") else {}
            notices.append(WebhookNotice(account_id=realm, entity=str(e.get("name")),
                                         entity_id=str(e.get("id")),
                                         operation=str(e.get("operation")),
                                         occurred_at=parse_time(e.get("lastUpdated")),
                                         extra=extra))
    return notices


def _cloud_event(e: Mapping[str, Any]) -> WebhookNotice | None:
    parts = str(e.get("type") or "").split(".")  # qbo.<entity>.<operation>.v1
    if len(parts) < 3 or parts[0] != "qbo":
        return None
    raw = e.get("data")
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    deleted = data.get("deletedid") or data.get("deletedId")
    return WebhookNotice(account_id=str(e.get("intuitaccountid") or ""),
                         entity=_ENTITIES.get(parts[1], parts[1].capitalize()),
                         entity_id=str(e.get("intuitentityid") or ""),
                         operation=_OPERATIONS.get(parts[2], parts[2].capitalize()),
                         occurred_at=parse_time(e.get("time")), delivery_id=e.get("id"),
                         extra={"deleted_id": str(deleted)} if deleted else {})
