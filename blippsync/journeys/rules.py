"""The enrollment rules: one pure function deciding enroll-or-skip, with a reason code.

Kept apart from the SQL so the rule table reads top to bottom in one place; the first
rule that says no is the recorded reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

ENROLLED = "enrolled"
SKIPPED = "skipped"
BILLABLE_STATUSES = frozenset({"active", "trialing"})
# Billing in trouble but recoverable (a failed card Stripe is still retrying, a paused
# trial): the business's enrollments and pending events wait where they are and go on
# when it is billable again. Any other non-billable status (canceled, incomplete_expired)
# stops its enrollments and skips its events.
HELD_STATUSES = frozenset({"past_due", "unpaid", "paused", "incomplete"})

# reason code -> sentence shown by `explain`
REASONS: dict[str, str] = {
    "enrolled": "enrolled",
    "historical": "a backfilled (historical) event never starts a journey",
    "unknown_customer": "the event names no customer we know",
    "cross_tenant": "the event's customer belongs to another business: refused, recorded "
                    "in blippsync.cross_tenant_links",
    "no_active_sequence": "no active sequence of the business starts on this event",
    "subscription_inactive": "the business's subscription is not active or trialing",
    "customer_deleted": "the customer was deleted",
    "customer_archived": "the customer is archived",
    "customer_opted_out": "the customer opted out",
    "review_requests_not_allowed": "the customer is marked not to receive review requests",
    "email_opted_out": "the customer unsubscribed from email and the sequence only sends email",
    "already_active": "the customer is already active in this sequence",
    "cooldown": "the customer was enrolled in this sequence within its cooldown",
    "review_cap": "the customer was asked for a review (or has an ask pending) within the cap",
}


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    opted_out: bool
    archived: bool
    deleted: bool
    review_requests_allowed: bool
    email_opted_out: bool = False


@dataclass(frozen=True, slots=True)
class SequenceFacts:
    cooldown_days: int
    asks_review: bool
    review_cap: bool  # whether the cross-sequence review cap applies to it
    channels: frozenset[str] = frozenset()  # the channels its steps send on


@dataclass(frozen=True, slots=True)
class History:
    """What we know of this customer and this sequence (and other review sequences)."""

    active_here: bool
    last_enrolled_here: datetime | None
    review_pending_elsewhere: bool  # active in another sequence that asks for a review
    last_review_ask: datetime | None  # any sequence


def decide(*, subscription_status: str, customer: CustomerFacts, sequence: SequenceFacts,
           history: History, now: datetime, review_cap_days: int) -> tuple[str, str]:
    """(ENROLLED, "enrolled") or (SKIPPED, reason code)."""
    if subscription_status not in BILLABLE_STATUSES:
        return SKIPPED, "subscription_inactive"
    if customer.deleted:
        return SKIPPED, "customer_deleted"
    if customer.archived:
        return SKIPPED, "customer_archived"
    if customer.opted_out:
        return SKIPPED, "customer_opted_out"
    if not customer.review_requests_allowed:
        return SKIPPED, "review_requests_not_allowed"
    if customer.email_opted_out and sequence.channels == {"email"}:
        return SKIPPED, "email_opted_out"
    if history.active_here:
        return SKIPPED, "already_active"
    if (history.last_enrolled_here is not None and sequence.cooldown_days > 0
            and history.last_enrolled_here > now - timedelta(days=sequence.cooldown_days)):
        return SKIPPED, "cooldown"
    if sequence.asks_review and sequence.review_cap and review_cap_days > 0:
        if history.review_pending_elsewhere:
            return SKIPPED, "review_cap"
        if (history.last_review_ask is not None
                and history.last_review_ask > now - timedelta(days=review_cap_days)):
            return SKIPPED, "review_cap"
    return ENROLLED, "enrolled"
