"""What comes back from customers: review-link clicks and inbound SMS (STOP).

The HTTP receiver (or a provider webhook) calls these; they are plain functions over the
database so any front end can use them.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from blippsync.database import Database

# CTIA / carrier opt-out and opt-in keywords
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout",
                        "revoke"})
START_WORDS = frozenset({"start", "unstop", "yes"})
_WORD = re.compile(r"[^a-z]")

_CLICK = sa.text("""
    UPDATE public.review_requests
    SET clicked_at = coalesce(clicked_at, :now),
        status = CASE WHEN status IN ('sent', 'delivered', 'unknown') THEN 'clicked' ELSE status END
    WHERE review_token = :token
    RETURNING id
""")
_FIND_BY_PHONE = sa.text("""
    SELECT id FROM public.customers
    WHERE business_id = :business_id AND (phone = :phone OR mobile_phone = :phone)
      AND deleted_at IS NULL
""")
_INSERT_INBOUND = sa.text("""
    INSERT INTO public.inbound_sms (business_id, customer_id, from_number, body, keyword,
                                    provider_id, received_at)
    VALUES (:business_id, :customer_id, :from_number, :body, :keyword, :provider_id, :now)
    ON CONFLICT (provider_id) WHERE provider_id IS NOT NULL DO NOTHING
    RETURNING id
""")
_OPT_OUT = sa.text("""
    UPDATE public.customers SET opted_out = true, sms_allowed = false,
           opted_out_at = coalesce(opted_out_at, :now)
    WHERE id = ANY(:ids)
""")
# A START re-subscribes the number at the carrier too: a carrier opt-out (21610) recorded as
# a suppression goes; numbers that cannot take SMS at all (landlines...) stay suppressed.
_LIFT_CARRIER_OPT_OUT = sa.text("""
    DELETE FROM blippsync.sms_suppressions
    WHERE phone = :phone AND error_code IN ('21610', 'opt_out')
""")
_OPT_IN = sa.text("""
    UPDATE public.customers SET opted_out = false, sms_allowed = true, opted_out_at = NULL
    WHERE id = ANY(:ids)
""")


def record_review_click(db: Database, token: str, *, now: datetime | None = None) -> bool:
    """Record a click on a review link (False: unknown token). A click stops the remaining
    review asks of that enrollment."""
    with db.begin() as conn:
        row = conn.execute(_CLICK, {"token": token, "now": now or datetime.now(UTC)}).first()
    return row is not None


def keyword(body: str) -> str | None:
    word = _WORD.sub("", body.strip().lower())
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in ("help", "info"):
        return "help"
    return None


def record_inbound_sms(db: Database, business_id: uuid.UUID, from_number: str, body: str, *,
                       provider_id: str | None = None, now: datetime | None = None) -> str | None:
    """Store an inbound SMS; a STOP opts every customer of the business with that number out
    of SMS at once (a START opts them back in). Returns the keyword recognised."""
    at = now or datetime.now(UTC)
    word = keyword(body)
    with db.begin() as conn:
        ids = [r.id for r in conn.execute(_FIND_BY_PHONE, {"business_id": business_id,
                                                          "phone": from_number})]
        inserted = conn.execute(_INSERT_INBOUND, {
            "business_id": business_id, "customer_id": ids[0] if ids else None,
            "from_number": from_number, "body": body, "keyword": word,
            "provider_id": provider_id, "now": at}).first()
        if inserted is not None and ids and word in ("stop", "start"):
            conn.execute(_OPT_OUT if word == "stop" else _OPT_IN, {"ids": ids, "now": at})
        if inserted is not None and word == "start":
            conn.execute(_LIFT_CARRIER_OPT_OUT, {"phone": from_number})
    return word
