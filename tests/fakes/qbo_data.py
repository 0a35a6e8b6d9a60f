"""QuickBooks objects in the real API's shapes (fields as Intuit returns them: only those
with values), for the fake and the bench."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

PACIFIC = timezone(timedelta(hours=-7))
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=PACIFIC)


def ts(minutes: float) -> str:
    """A LastUpdatedTime in Intuit's form: company-local offset, second precision."""
    return (T0 + timedelta(minutes=minutes)).isoformat(timespec="seconds")


def customer(i: int, minutes: float, active: bool = True, **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "Taxable": True, "Job": False, "BillWithParent": False, "Balance": 0,
        "BalanceWithJobs": 0, "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "PreferredDeliveryMethod": "Print", "domain": "QBO", "sparse": False, "Id": str(i),
        "SyncToken": "0", "MetaData": {"CreateTime": ts(0), "LastUpdatedTime": ts(minutes)},
        "GivenName": f"Given{i}", "FamilyName": f"Family{i}",
        "FullyQualifiedName": f"Customer {i}", "DisplayName": f"Customer {i}",
        "PrintOnCheckName": f"Customer {i}", "Active": active,
        "PrimaryEmailAddr": {"Address": f"customer{i}@example.com"},
        "PrimaryPhone": {"FreeFormNumber": f"(415) 555-{i % 10000:04d}"},
        "BillAddr": {"Id": str(1000 + i), "Line1": f"{i} Main St", "City": "Mountain View",
                     "CountrySubDivisionCode": "CA", "PostalCode": "94043"},
    }
    c.update(extra)
    return c


def invoice(i: int, minutes: float, total: float, balance: float, customer_id: str = "3",
            linked: tuple[tuple[str, str], ...] = (), **extra: Any) -> dict[str, Any]:
    inv: dict[str, Any] = {
        "AllowIPNPayment": False, "AllowOnlinePayment": False, "domain": "QBO", "sparse": False,
        "Id": str(i), "SyncToken": "3", "DocNumber": str(1000 + i), "TxnDate": "2026-11-01",
        "MetaData": {"CreateTime": ts(0), "LastUpdatedTime": ts(minutes)},
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "LinkedTxn": [{"TxnId": t, "TxnType": kind} for kind, t in linked],
        "Line": [{"Id": "1", "LineNum": 1, "Amount": total, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}}}],
        "CustomerRef": {"value": customer_id, "name": "Cool Cars"},
        "BillEmail": {"Address": "Cool_Cars@intuit.com"},
        "DueDate": "2026-12-01", "TotalAmt": total, "Balance": balance,
        "EmailStatus": "EmailSent", "PrintStatus": "NeedToPrint",
    }
    inv.update(extra)
    return inv
