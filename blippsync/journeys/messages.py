"""What was sent: the review_requests ledger, filtered, newest first (`messages list`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from blippsync.database import Database
from blippsync.errors import InputError
from blippsync.ids import option_id

STATUSES = ("scheduled", "sent", "delivered", "undelivered", "failed", "clicked", "unknown")
CHANNELS = ("email", "sms")
_AGO = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

_LIST = sa.text("""
    SELECT r.id, r.created_at, r.sent_at, r.business_id, b.name AS business, r.customer_id,
           c.name AS customer, r.channel, r.status, r.purpose, s.name AS sequence,
           r.step_order, r.attempts, r.metadata ->> 'to' AS sent_to,
           r.metadata ->> 'subject' AS subject, r.metadata ->> 'provider_id' AS provider_id,
           r.metadata ->> 'channel_plugin' AS via, r.error_code, r.last_error, r.clicked_at,
           r.status_updated_at
    FROM public.review_requests r
    JOIN public.businesses b ON b.id = r.business_id
    LEFT JOIN public.customers c ON c.id = r.customer_id
    LEFT JOIN public.sequences s ON s.id = r.sequence_id
    WHERE (CAST(:business AS uuid) IS NULL OR r.business_id = :business)
      AND (CAST(:customer AS uuid) IS NULL OR r.customer_id = :customer)
      AND (CAST(:channel AS text) IS NULL OR r.channel = :channel)
      AND (CAST(:status AS text) IS NULL OR r.status = :status)
      AND (CAST(:since AS timestamptz) IS NULL OR r.created_at >= :since)
    ORDER BY r.created_at DESC, r.id
    LIMIT :limit
""")


def list_messages(db: Database, *, business: str | None = None, customer: str | None = None,
                  channel: str | None = None, status: str | None = None,
                  since: str | None = None, limit: int = 100,
                  now: datetime | None = None) -> list[dict[str, Any]]:
    """Messages matching every filter given; InputError naming a bad filter."""
    if channel is not None and channel not in CHANNELS:
        raise InputError(f"--channel: {channel!r} is not one of {', '.join(CHANNELS)}")
    if status is not None and status not in STATUSES:
        raise InputError(f"--status: {status!r} is not one of {', '.join(STATUSES)}")
    if limit < 1:
        raise InputError("--limit: must be at least 1")
    params = {"business": option_id(business, "--business"),
              "customer": option_id(customer, "--customer"), "channel": channel,
              "status": status, "since": parse_since(since, now), "limit": limit}
    with db.connect() as conn:
        return [dict(r) for r in conn.execute(_LIST, params).mappings()]


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """'2025-06-01', '2025-06-01T08:00:00+02:00' (UTC when no zone), or '30m' / '12h' /
    '7d' / '2w' ago."""
    if not value:
        return None
    text = value.strip()
    ago = _AGO.match(text.lower())
    if ago:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[ago[2]]: int(ago[1])})
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--since: {value!r} is neither a date (2025-06-01, ISO 8601) nor an "
                         "age like 30m, 12h, 7d, 2w") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)

