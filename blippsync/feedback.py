"""Private feedback: who is being asked (a review request or a QR code), counting scans,
and storing a rating.

Every rater is offered the business's public review link whatever they answer: routing
only happy customers to Google ("review gating") breaks Google's review policy and the
FTC's rule on consumer reviews (16 CFR 465.7). What a low rating adds is a
`feedback_received` trigger event (source `feedback`, carrying the rating) that a
business's own sequences can start on. Any feedback stops the customer's journeys that
began before it (the journey planner's `private_feedback` stop).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from blippsync.database import Database
from blippsync.google_review import review_url

FEEDBACK_SOURCE = "feedback"  # customer_sources row (migration 0170)
FEEDBACK_EVENT = "feedback_received"
MAX_COMMENT_CHARS = 2000

_BY_TOKEN = sa.text("""
    SELECT r.id AS review_request_id, r.channel, b.id AS business_id, b.name AS business_name,
           b.google_review_url, b.google_place_id, c.id AS customer_id, c.name AS customer_name,
           c.email AS customer_email,
           (SELECT f.rating FROM public.private_feedback f WHERE f.review_request_id = r.id)
               AS previous_rating
    FROM public.review_requests r
    JOIN public.businesses b ON b.id = r.business_id
    LEFT JOIN public.customers c ON c.id = r.customer_id
    WHERE r.review_token = :token
""")
_BY_CODE = sa.text("""
    SELECT q.id AS qr_code_id, b.id AS business_id, b.name AS business_name, b.google_review_url,
           b.google_place_id, t.id AS tech_id, t.name AS tech_name
    FROM public.qr_codes q
    JOIN public.businesses b ON b.id = q.business_id
    LEFT JOIN public.techs t ON t.id = q.tech_id
    WHERE q.code = :code AND q.active
""")
# One statement: the count and the log row commit together or not at all, and concurrent
# scans of one code serialise on its row (no lost increments).
_SCAN = sa.text("""
    WITH hit AS (
        UPDATE public.qr_codes SET scan_count = scan_count + 1
        WHERE code = :code AND active
        RETURNING id, business_id, tech_id)
    INSERT INTO public.qr_scans (business_id, qr_code_id, tech_id, scanned_at)
    SELECT business_id, id, tech_id, :now FROM hit
    RETURNING qr_code_id
""")
_INSERT_FEEDBACK = sa.text("""
    INSERT INTO public.private_feedback (business_id, customer_id, customer_email, customer_name,
                                         rating, feedback, source, tech_id, qr_code_id,
                                         review_request_id, created_at)
    VALUES (:business_id, :customer_id, :customer_email, :customer_name, :rating, :comment,
            :source, :tech_id, :qr_code_id, :review_request_id, :now)
    ON CONFLICT (business_id, review_request_id) WHERE review_request_id IS NOT NULL
    DO UPDATE SET rating = EXCLUDED.rating, feedback = EXCLUDED.feedback
    RETURNING id
""")
_INSERT_EVENT = sa.text("""
    INSERT INTO public.trigger_events (business_id, source, event_type, customer_id,
                                       occurred_at, payload, dedupe_key)
    VALUES (:business_id, :source, :event_type, :customer_id, :now, CAST(:payload AS jsonb),
            :dedupe_key)
    ON CONFLICT (business_id, dedupe_key) DO NOTHING
""")


@dataclass(frozen=True)
class FeedbackTarget:
    """Whose opinion a page asks for, and where the public review link leads."""

    business_id: uuid.UUID
    business_name: str
    review_url: str | None  # a validated Google URL, or None when the business has none
    source: str  # private_feedback.source: email | sms | qr
    customer_id: uuid.UUID | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    tech_id: uuid.UUID | None = None
    tech_name: str | None = None
    qr_code_id: uuid.UUID | None = None
    review_request_id: uuid.UUID | None = None
    previous_rating: int | None = None


def target_for_token(db: Database, token: str) -> FeedbackTarget | None:
    with db.connect() as conn:
        row = conn.execute(_BY_TOKEN, {"token": token}).first()
    if row is None:
        return None
    return FeedbackTarget(
        business_id=row.business_id, business_name=row.business_name,
        review_url=review_url(row.google_review_url, row.google_place_id), source=row.channel,
        customer_id=row.customer_id, customer_name=row.customer_name,
        customer_email=row.customer_email, review_request_id=row.review_request_id,
        previous_rating=row.previous_rating)


def target_for_code(db: Database, code: str) -> FeedbackTarget | None:
    """The active code's business and technician, None for an unknown or retired code."""
    with db.connect() as conn:
        row = conn.execute(_BY_CODE, {"code": code}).first()
    if row is None:
        return None
    return FeedbackTarget(
        business_id=row.business_id, business_name=row.business_name,
        review_url=review_url(row.google_review_url, row.google_place_id), source="qr",
        tech_id=row.tech_id, tech_name=row.tech_name, qr_code_id=row.qr_code_id)


def record_scan(db: Database, code: str, *, now: datetime | None = None) -> bool:
    """Count one scan of an active code (False: unknown or retired)."""
    with db.begin() as conn:
        return conn.execute(_SCAN, {"code": code, "now": now or datetime.now(UTC)}).first() \
            is not None


def submit_feedback(db: Database, target: FeedbackTarget, rating: int, comment: str | None, *,
                    low_rating_max: int, now: datetime | None = None) -> uuid.UUID:
    """Store the rating (one per review request: a resubmission updates it); a low one also
    emits `feedback_received`. Returns the private_feedback id."""
    if not 1 <= rating <= 5:
        raise ValueError(f"rating {rating} is not 1-5")
    text = (comment or "").strip()[:MAX_COMMENT_CHARS] or None
    at = now or datetime.now(UTC)
    with db.begin() as conn:
        feedback_id: uuid.UUID = conn.execute(_INSERT_FEEDBACK, {
            "business_id": target.business_id, "customer_id": target.customer_id,
            "customer_email": target.customer_email, "customer_name": target.customer_name,
            "rating": rating, "comment": text, "source": target.source,
            "tech_id": target.tech_id, "qr_code_id": target.qr_code_id,
            "review_request_id": target.review_request_id, "now": at}).scalar_one()
        if rating <= low_rating_max:
            conn.execute(_INSERT_EVENT, {
                "business_id": target.business_id, "source": FEEDBACK_SOURCE,
                "event_type": FEEDBACK_EVENT, "customer_id": target.customer_id, "now": at,
                "dedupe_key": f"feedback:{feedback_id}:low",
                "payload": json.dumps({
                    "rating": rating, "feedback_id": str(feedback_id), "comment": text,
                    "via": target.source,
                    "tech_id": str(target.tech_id) if target.tech_id else None,
                    "tech_name": target.tech_name})})
    return feedback_id
