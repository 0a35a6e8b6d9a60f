"""The journey engine's SQL, readable whole. Parameters only; never formatted values."""

from __future__ import annotations

import sqlalchemy as sa

# --- routing -------------------------------------------------------------------------------

# Events of a business whose billing is held (rules.HELD_STATUSES) wait, unclaimed.
CLAIM_EVENTS = sa.text("""
    SELECT e.id, e.business_id, e.source, e.event_type, e.customer_id, e.external_customer_id,
           e.historical, e.occurred_at
    FROM public.trigger_events e
    JOIN public.businesses b ON b.id = e.business_id
    WHERE e.routing_state = 'pending' AND b.subscription_status <> ALL(:held)
    ORDER BY e.created_at
    LIMIT :limit
    FOR UPDATE OF e SKIP LOCKED
""")

CUSTOMERS = sa.text("""
    SELECT id, business_id, opted_out, archived, deleted_at, review_requests_allowed,
           merged_into_id, email_opted_out
    FROM public.customers WHERE id = ANY(:ids)
""")

BUSINESS_STATUS = sa.text(
    "SELECT id, subscription_status FROM public.businesses WHERE id = ANY(:ids)")

ACTIVE_SEQUENCES = sa.text("""
    SELECT s.id, s.business_id, s.trigger_source, s.trigger_event_type, s.settings,
           EXISTS (SELECT 1 FROM public.sequence_steps st
                   WHERE st.sequence_id = s.id AND st.message_purpose = 'review') AS asks_review,
           (SELECT st.delay_minutes FROM public.sequence_steps st
            WHERE st.sequence_id = s.id ORDER BY st.step_order LIMIT 1) AS first_delay,
           ARRAY(SELECT DISTINCT st.channel FROM public.sequence_steps st
                 WHERE st.sequence_id = s.id AND st.channel IS NOT NULL) AS channels
    FROM public.sequences s
    WHERE s.business_id = ANY(:ids) AND s.status = 'active'
    ORDER BY s.created_at, s.name
""")

# Enrollments of these customers, live and archived (a cooldown outlives retention).
ENROLLMENT_HISTORY = sa.text("""
    SELECT h.customer_id, h.sequence_id, bool_or(h.status = 'active') AS active,
           max(h.enrolled_at) AS last_enrolled,
           EXISTS (SELECT 1 FROM public.sequence_steps st
                   WHERE st.sequence_id = h.sequence_id
                     AND st.message_purpose = 'review') AS asks_review
    FROM (SELECT customer_id, sequence_id, status, enrolled_at
          FROM public.customer_enrollments WHERE customer_id = ANY(:ids)
          UNION ALL
          SELECT customer_id, sequence_id, status, enrolled_at
          FROM public.customer_enrollments_archive WHERE customer_id = ANY(:ids)) h
    WHERE h.sequence_id IS NOT NULL
    GROUP BY h.customer_id, h.sequence_id
""")

RECENT_REVIEW_ASKS = sa.text("""
    SELECT customer_id, max(coalesce(sent_at, created_at)) AS last_ask
    FROM public.review_requests
    WHERE customer_id = ANY(:ids) AND purpose = 'review' AND created_at > :since
      AND status IN ('sent', 'delivered', 'clicked', 'unknown')
    GROUP BY customer_id
""")

# psycopg-level (binary parameters, positional %b): one statement per batch.
INSERT_ENROLLMENTS = """
    INSERT INTO public.customer_enrollments
        (id, sequence_id, customer_id, enrolled_at, next_step_at, metadata)
    SELECT * FROM unnest(%b::uuid[], %b::uuid[], %b::uuid[], %b::timestamptz[],
                         %b::timestamptz[], %b::text[]::jsonb[])
    ON CONFLICT (sequence_id, customer_id) WHERE status = 'active' DO NOTHING
    RETURNING id
"""

COPY_DECISIONS = """
    COPY public.enrollment_decisions (business_id, trigger_event_id, customer_id, sequence_id,
                                      enrollment_id, decision, reason, detail, created_at)
    FROM STDIN
"""

MARK_ROUTED = """
    UPDATE public.trigger_events
    SET routing_state = CASE WHEN id = ANY(%b::uuid[]) THEN 'historical' ELSE 'routed' END,
        routed_at = %b, routing_error = NULL
    WHERE id = ANY(%b::uuid[])
"""

# --- execution -----------------------------------------------------------------------------

# Enrollments of paused sequences, and of businesses whose billing is held, wait in place.
ACTIVE_SEQUENCE_IDS = sa.text("""
    SELECT s.id FROM public.sequences s JOIN public.businesses b ON b.id = s.business_id
    WHERE s.status = 'active' AND b.subscription_status <> ALL(:held)
""")

STOP_ARCHIVED_SEQUENCES = sa.text("""
    UPDATE public.customer_enrollments e
    SET status = 'stopped', status_reason = 'sequence_archived', next_step_at = NULL
    WHERE e.status = 'active'
      AND e.sequence_id IN (SELECT id FROM public.sequences WHERE status = 'archived')
""")

# Through the spec's (sequence_id, status, next_step_at) index: paused sequences are
# simply not listed, so their enrollments wait where they are.
CLAIM_DUE = sa.text("""
    SELECT e.id, e.business_id, e.sequence_id, e.customer_id, e.current_step, e.enrolled_at,
           e.next_step_at
    FROM public.customer_enrollments e
    WHERE e.sequence_id = ANY(:sequences) AND e.status = 'active' AND e.next_step_at <= :now
    ORDER BY e.next_step_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
""")

SEQUENCE_STEPS = sa.text("""
    SELECT s.id AS sequence_id, s.settings, st.step_order, st.step_type, st.delay_minutes,
           st.message_purpose, st.message_config, st.channel
    FROM public.sequences s
    LEFT JOIN public.sequence_steps st ON st.sequence_id = s.id
    WHERE s.id = ANY(:ids)
    ORDER BY s.id, st.step_order
""")

# sms_suppressed: why a carrier refused the number for good (blippsync.sms_suppressions).
EXEC_CUSTOMERS = sa.text("""
    SELECT c.id, c.business_id, c.name, c.email, c.phone, c.opted_out, c.archived, c.deleted_at,
           c.review_requests_allowed, c.sms_allowed, c.merged_into_id, c.email_opted_out,
           c.timezone, s.error_code || ' ' || s.reason AS sms_suppressed,
           coalesce(c.mobile_phone, c.phone) AS sms_phone  -- texts go to the mobile when known
    FROM public.customers c
    LEFT JOIN blippsync.sms_suppressions s ON s.phone = coalesce(c.mobile_phone, c.phone)
    WHERE c.id = ANY(:ids)
""")

EXEC_BUSINESSES = sa.text("""
    SELECT id, name, phone, website_url, google_review_url, google_place_id, timezone,
           subscription_status, postal_address, email_from_address, email_reply_to
    FROM public.businesses WHERE id = ANY(:ids)
""")

LAST_FEEDBACK = sa.text("""
    SELECT customer_id, max(created_at) AS at FROM public.private_feedback
    WHERE customer_id = ANY(:ids) GROUP BY customer_id
""")

LEDGER_ROWS = sa.text("""
    SELECT id, enrollment_id, step_order, status, attempts, in_flight_since, clicked_at,
           last_error
    FROM public.review_requests WHERE enrollment_id = ANY(:ids)
""")

RECENT_SMS = sa.text("""
    SELECT customer_id, created_at FROM public.review_requests
    WHERE customer_id = ANY(:ids) AND channel = 'sms' AND created_at > :since
      AND status IN ('scheduled', 'sent', 'delivered', 'undelivered', 'clicked', 'unknown')
""")

# psycopg-level, binary arrays: one statement per batch whatever its size.
UPDATE_ENROLLMENTS = """
    UPDATE public.customer_enrollments e
    SET current_step = u.step, status = u.status, status_reason = u.reason,
        next_step_at = u.next_at,
        metadata = CASE WHEN u.notes IS NULL THEN e.metadata
                        ELSE jsonb_set(e.metadata, '{notes}',
                                       coalesce(e.metadata -> 'notes', '[]'::jsonb) || u.notes) END
    FROM unnest(%b::uuid[], %b::int[], %b::int[], %b::text[], %b::text[], %b::timestamptz[],
                %b::text[]::jsonb[]) AS u(id, expected, step, status, reason, next_at, notes)
    WHERE e.id = u.id AND e.current_step = u.expected AND e.status = 'active'
"""

COPY_LEDGER = """
    COPY public.review_requests (id, business_id, customer_id, enrollment_id, sequence_id,
                                 step_order, purpose, status, channel, send_key, review_token,
                                 attempts, metadata, created_at)
    FROM STDIN
"""

# psycopg-level: now, ids, the rendered message of each (to, subject, body)
MARK_IN_FLIGHT = """
    UPDATE public.review_requests r
    SET in_flight_since = %b, attempts = r.attempts + 1, metadata = r.metadata || u.message
    FROM unnest(%b::uuid[], %b::text[]::jsonb[]) AS u(id, message)
    WHERE r.id = u.id AND r.in_flight_since IS NULL AND r.status = 'scheduled'
    RETURNING r.id
"""

MARK_UNKNOWN = sa.text("""
    UPDATE public.review_requests
    SET status = 'unknown', in_flight_since = NULL,
        last_error = coalesce(last_error, 'worker lost while sending: outcome unknown')
    WHERE id = ANY(:ids) AND status = 'scheduled'
""")

RECORD_OUTCOMES = """
    UPDATE public.review_requests r
    SET status = u.status, sent_at = u.sent_at, in_flight_since = NULL, last_error = u.error,
        metadata = r.metadata || u.extra
    FROM unnest(%b::uuid[], %b::text[], %b::timestamptz[], %b::text[], %b::text[]::jsonb[])
         AS u(id, status, sent_at, error, extra)
    WHERE r.id = u.id
"""

SUPPRESS_NUMBERS = sa.text("""
    INSERT INTO blippsync.sms_suppressions (phone, error_code, reason)
    SELECT * FROM unnest(CAST(:phones AS text[]), CAST(:codes AS text[]), CAST(:reasons AS text[]))
    ON CONFLICT (phone) DO NOTHING
""")

OPT_OUT_SMS = sa.text("""
    UPDATE public.customers SET sms_allowed = false, opted_out = true,
           opted_out_at = coalesce(opted_out_at, :now)
    WHERE id = ANY(:ids)
""")
