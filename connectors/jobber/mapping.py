"""Jobber nodes to records: clients to customers, completed jobs and paid invoices to events.

Each event is keyed to one business fact (`jobber:<account>:job:<id>:completed`,
`jobber:<account>:invoice:<id>:paid`), so a recurring job with many visits, a webhook
delivered twice or a page read again after a crash all store one event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from blippsync.records import CustomerRecord, EventRecord, Rejected

JOB_COMPLETED = "job_completed"
INVOICE_PAID = "invoice_paid"


def customer(node: Mapping[str, Any]) -> CustomerRecord | Rejected:
    """Every email and phone of the client: the primary address first, the number described
    as mobile apart (texts go there), every other one kept."""
    client_id = node.get("id")
    if not client_id:
        return Rejected("Jobber client without an id", location="jobber:clients")
    emails = _ordered(node.get("emails"), "address")
    phones = _ordered(node.get("phones"), "number")
    mobile = next((p for p in phones if _is_mobile(p)), None)
    primary = next((p for p in phones if p is not mobile), None)
    texted = mobile or primary
    review_flag = node.get("receivesReviewRequests")
    return CustomerRecord(
        external_id=str(client_id),
        name=(node.get("name") or "").strip() or (node.get("companyName") or "").strip() or None,
        email=emails[0]["address"] if emails else None,
        emails=tuple(e["address"] for e in emails[1:]),
        phone=primary["number"] if primary else None,
        mobile=mobile["number"] if mobile else None,
        phones=tuple(p["number"] for p in phones if p is not mobile and p is not primary),
        sms_allowed=texted.get("smsAllowed") if texted else None,
        address=address(node.get("billingAddress")),
        archived=bool(node["isArchived"]) if node.get("isArchived") is not None else None,
        review_requests_allowed=review_flag if isinstance(review_flag, bool) else None,
        location=f"jobber:client:{client_id}",
    )


def deleted_customer(client_id: str) -> CustomerRecord:
    return CustomerRecord(external_id=client_id, deleted=True,
                          location=f"jobber:client:{client_id}")


def job_completed(node: Mapping[str, Any], account: str) -> EventRecord | Rejected | None:
    """The job's completion, or None while it is not completed."""
    completed_at = parse_time(node.get("completedAt"))
    if completed_at is None:
        return None
    client_id = (node.get("client") or {}).get("id")
    where = f"jobber:job:{node.get('id')}"
    if not node.get("id") or not client_id:
        return Rejected("completed Jobber job without an id or client", location=where)
    return EventRecord(
        event_type=JOB_COMPLETED,
        dedupe_key=f"jobber:{account}:job:{node['id']}:completed",
        customer_external_id=str(client_id),
        occurred_at=completed_at,
        payload={"job_id": node["id"], "job_number": node.get("jobNumber"),
                 "title": node.get("title"), "job_status": node.get("jobStatus")},
        location=where,
    )


def invoice_paid(node: Mapping[str, Any], account: str) -> EventRecord | Rejected | None:
    """The invoice's payment, or None while its status is not `paid`."""
    if str(node.get("invoiceStatus") or "").lower() != "paid":
        return None
    client_id = (node.get("client") or {}).get("id")
    where = f"jobber:invoice:{node.get('id')}"
    paid_at = parse_time(node.get("receivedDate")) or parse_time(node.get("updatedAt"))
    if not node.get("id") or not client_id or paid_at is None:
        return Rejected("paid Jobber invoice without an id, client or date", location=where)
    return EventRecord(
        event_type=INVOICE_PAID,
        dedupe_key=f"jobber:{account}:invoice:{node['id']}:paid",
        customer_external_id=str(client_id),
        occurred_at=paid_at,
        payload={"invoice_id": node["id"], "invoice_number": node.get("invoiceNumber"),
                 "total": (node.get("amounts") or {}).get("total")},
        location=where,
    )


def address(raw: Mapping[str, Any] | None) -> str | None:
    if not raw:
        return None
    region = " ".join(p for p in (raw.get("province"), raw.get("postalCode")) if p)
    parts = [raw.get("street1"), raw.get("street2"), raw.get("city"), region, raw.get("country")]
    text = ", ".join(p.strip() for p in parts if p and p.strip())
    return text or None


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 date-times (`Z` or offsets) and bare dates, as aware UTC datetimes."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            day = date.fromisoformat(text[:10])
        except ValueError:
            return None
        parsed = datetime(day.year, day.month, day.day)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _ordered(items: Any, key: str) -> list[dict[str, Any]]:
    """The usable entries of a list of emails or phones, the primary one first."""
    usable = [i for i in items or [] if isinstance(i, dict) and (i.get(key) or "").strip()]
    return sorted(usable, key=lambda i: not i.get("primary"))


def _is_mobile(phone: Mapping[str, Any]) -> bool:
    return any(word in str(phone.get("description") or "").casefold()
               for word in ("mobile", "cell"))
