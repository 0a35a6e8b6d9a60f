"""QuickBooks objects to records: customers, and the invoice-paid rule.

Intuit returns only the fields that have values, so every sub-object may be absent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from blippsync.records import CustomerRecord, EventRecord

_OFFSET_NO_COLON = re.compile(r"([+-]\d{2})(\d{2})$")
_ADDRESS_LINES = ("Line1", "Line2", "Line3", "Line4", "Line5")


def parse_time(text: str | None) -> datetime | None:
    """QuickBooks timestamps: '2024-06-20T13:16:17-07:00', '...-0700', '...Z'; kept aware."""
    if not text or not isinstance(text, str):
        return None
    return _parse_time(text)


@functools.lru_cache(maxsize=4096)  # a page repeats few distinct instants, each read 3-4 times
def _parse_time(text: str) -> datetime | None:
    value = _OFFSET_NO_COLON.sub(r"\1:\2", text.strip().replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def last_updated(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("MetaData")
    return meta.get("LastUpdatedTime") if isinstance(meta, dict) else None


def _text(obj: Any, *path: str) -> str | None:
    for key in path:  # JSON objects are dicts: the exact check is the fast one
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj.strip() or None if isinstance(obj, str) else None


def customer_name(c: Mapping[str, Any]) -> str | None:
    full = " ".join(p for p in (_text(c, "GivenName"), _text(c, "FamilyName")) if p)
    return _text(c, "DisplayName") or full or _text(c, "CompanyName")


def address(addr: Any) -> str | None:
    """A BillAddr as one line: 'Line1, Line2, City, ST 94043, USA'."""
    if not isinstance(addr, dict):
        return None
    lines = [_text(addr, key) for key in _ADDRESS_LINES]
    region = " ".join(p for p in (_text(addr, "CountrySubDivisionCode"),
                                  _text(addr, "PostalCode")) if p)
    parts = [p for p in (*lines, _text(addr, "City"), region, _text(addr, "Country")) if p]
    return ", ".join(parts) or None


def parent_id(c: Mapping[str, Any]) -> str | None:
    """The customer a job or sub-customer hangs under (`Job: true` with a `ParentRef`)."""
    return _text(c, "ParentRef", "value")


def customer_record(c: Mapping[str, Any]) -> CustomerRecord:
    """All the numbers a customer has (primary, mobile, alternate) and its email field as
    written: QuickBooks accepts a comma-separated list there, which the core splits."""
    external_id = str(c["Id"])
    if c.get("status") == "Deleted":  # CDC: only Id, status and MetaData are present
        return CustomerRecord(external_id=external_id, deleted=True,
                              location=f"quickbooks Customer {external_id}")
    alternate = _text(c, "AlternatePhone", "FreeFormNumber")
    return CustomerRecord(
        external_id=external_id,
        name=customer_name(c),
        email=_text(c, "PrimaryEmailAddr", "Address"),
        phone=_text(c, "PrimaryPhone", "FreeFormNumber"),
        mobile=_text(c, "Mobile", "FreeFormNumber"),
        phones=(alternate,) if alternate else (),
        parent_external_id=parent_id(c),
        address=address(c.get("BillAddr")),
        archived=not bool(c.get("Active", True)),
        location=f"quickbooks Customer {external_id}",
    )


def _amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def is_paid(inv: Mapping[str, Any]) -> bool:
    """Paid: total > 0, balance 0, not voided, and at least one linked Payment (an invoice
    cleared only by a credit memo was not paid)."""
    if _amount(inv.get("TotalAmt")) <= 0 or _amount(inv.get("Balance")) != 0:
        return False
    if "void" in (inv.get("PrivateNote") or "").lower():
        return False
    return any(isinstance(t, Mapping) and t.get("TxnType") == "Payment"
               for t in inv.get("LinkedTxn") or ())


def invoice_paid_event(realm_id: str, inv: Mapping[str, Any]) -> EventRecord | None:
    """The invoice_paid fact for a paid invoice, else None. One fact per invoice: the key
    names the invoice, so a payment voided and made again never fires twice."""
    customer = _text(inv, "CustomerRef", "value")
    occurred = parse_time(last_updated(inv)) or parse_time(inv.get("TxnDate"))
    if not is_paid(inv) or customer is None or occurred is None:
        return None
    invoice_id = str(inv["Id"])
    payments = [str(t.get("TxnId")) for t in inv.get("LinkedTxn") or ()
                if isinstance(t, Mapping) and t.get("TxnType") == "Payment"]
    return EventRecord(
        event_type="invoice_paid",
        dedupe_key=f"quickbooks:{realm_id}:invoice:{invoice_id}:paid",
        customer_external_id=customer,
        occurred_at=occurred,
        payload={"invoice_id": invoice_id, "doc_number": inv.get("DocNumber"),
                 "total": str(_amount(inv.get("TotalAmt"))),
                 "currency": _text(inv, "CurrencyRef", "value"),
                 "customer_name": _text(inv, "CustomerRef", "name"), "payment_ids": payments},
        contact_email=_text(inv, "BillEmail", "Address"),
        location=f"quickbooks Invoice {invoice_id}",
    )
