"""Delivery outcomes reported back by a provider (Twilio status callbacks, a bounce plugin).

A message the provider accepted is 'sent'; the report makes it 'delivered', 'undelivered'
or 'failed' with the provider's error code. Only a message still 'sent' (or 'unknown':
the send's answer was lost but the provider did take it) changes: reports arrive out of
order and a clicked or already final message stays as it is. A permanent failure adds
the number to blippsync.sms_suppressions, so no business sends it SMS again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from blippsync.database import Database
from blippsync.journeys import queries as q

FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})

_UPDATE = sa.text("""
    UPDATE public.review_requests
    SET status = :status, error_code = :code, status_updated_at = :now,
        last_error = CASE WHEN :status = 'delivered' THEN last_error ELSE :error END,
        sent_at = coalesce(sent_at, :now)
    WHERE metadata ->> 'provider_id' = :provider_id AND metadata ? 'provider_id'
      AND status IN ('sent', 'unknown')
    RETURNING id, customer_id, channel, metadata ->> 'to' AS sent_to
""")
# The last `limit` SMS to this number, newest first (for "unreachable N times in a row").
_RECENT_CODES = sa.text("""
    SELECT error_code FROM public.review_requests
    WHERE channel = 'sms' AND metadata ->> 'to' = :phone AND customer_id = :customer_id
      AND status IN ('sent', 'delivered', 'undelivered', 'failed', 'clicked')
    ORDER BY created_at DESC LIMIT :limit
""")


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One provider report: its message id, our status, and the provider's error code."""

    provider_id: str
    status: str  # delivered | undelivered | failed
    error_code: str | None = None
    error: str | None = None


def record_delivery_status(db: Database, report: StatusReport, *,
                           permanent: dict[str, str] | None = None,
                           repeat_code: str | None = None, repeat_limit: int = 0,
                           now: datetime | None = None) -> bool:
    """Apply one report; True when a message changed. `permanent` maps the error codes that
    suppress the number to a reason; `repeat_code` suppresses it after `repeat_limit` of
    that code in a row."""
    if report.status not in FINAL_STATUSES:
        return False
    at = now or datetime.now(UTC)
    with db.begin() as conn:
        row = conn.execute(_UPDATE, {"status": report.status, "code": report.error_code,
                                     "error": report.error, "now": at,
                                     "provider_id": report.provider_id}).first()
        if row is None or row.channel != "sms" or not row.sent_to or not report.error_code:
            return row is not None
        reason = (permanent or {}).get(report.error_code)
        if reason is None and report.error_code == repeat_code and repeat_limit > 0:
            codes = [r.error_code for r in conn.execute(_RECENT_CODES, {
                "phone": row.sent_to, "customer_id": row.customer_id, "limit": repeat_limit})]
            if len(codes) == repeat_limit and all(c == repeat_code for c in codes):
                reason = f"unreachable {repeat_limit} times in a row"
        if reason is not None:
            conn.execute(q.SUPPRESS_NUMBERS, {"phones": [row.sent_to],
                                              "codes": [report.error_code],
                                              "reasons": [reason]})
    return True
