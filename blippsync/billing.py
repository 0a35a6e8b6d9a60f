"""A business's billing status, as its billing system reports it.

The journey engine sends only for billable businesses (`journeys.rules.BILLABLE_STATUSES`);
this module is the one writer of `businesses.subscription_status` from billing records.
Each write carries an ordering key (`subscription_status_at`): a status older than the
stored one is ignored, so a retried or reordered delivery never moves the status back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from blippsync.records import SubscriptionStatus

# The CHECK list of businesses.subscription_status (Stripe's subscription statuses).
SUBSCRIPTION_STATUSES = frozenset({"active", "trialing", "past_due", "canceled", "incomplete",
                                   "incomplete_expired", "unpaid", "paused"})

_APPLY = sa.text("""
    UPDATE public.businesses
    SET subscription_status = :status, subscription_status_at = :as_of
    WHERE id = :business_id
      AND (subscription_status_at IS NULL OR subscription_status_at < :as_of)
""")


def apply_statuses(conn: sa.Connection, business_id: uuid.UUID,
                   statuses: Sequence[SubscriptionStatus]) -> int:
    """Store the newest of `statuses` unless a newer one is already stored; return 1 if a
    row changed. Runs inside the caller's (the batch's) transaction."""
    if not statuses:
        return 0
    newest = max(statuses, key=lambda s: s.as_of)
    return conn.execute(_APPLY, {"business_id": business_id, "status": newest.status,
                                 "as_of": newest.as_of}).rowcount
