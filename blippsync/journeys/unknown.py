"""Messages whose outcome is unknown: the operator's way to see them and settle them.

A message is `unknown` when a worker died between marking it in flight and recording what
the provider said: it may have gone out, so it is never retried blindly. An operator who
has checked (the SMTP server's log, the Twilio console) and knows it never reached the
provider releases it: the ledger row is scheduled again and its enrollment goes back to
that step, so the next pass sends it exactly once. Later steps already sent stay sent
(the planner walks past them by their ledger rows).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from blippsync.database import Database

_LIST = sa.text("""
    SELECT r.id, r.business_id, b.name AS business, r.customer_id, c.name AS customer,
           r.channel, r.step_order + 1 AS step, r.metadata ->> 'to' AS sent_to,
           r.created_at, r.attempts, r.last_error, r.enrollment_id
    FROM public.review_requests r
    JOIN public.businesses b ON b.id = r.business_id
    LEFT JOIN public.customers c ON c.id = r.customer_id
    WHERE r.status = 'unknown'
      AND (CAST(:business_id AS uuid) IS NULL OR r.business_id = :business_id)
    ORDER BY r.created_at, r.id
""")

# Only rows whose enrollment can still go on (active, or completed past that step).
_RELEASE = sa.text("""
    WITH released AS (
        UPDATE public.review_requests r
        SET status = 'scheduled', in_flight_since = NULL,
            last_error = 'released by an operator after an unknown outcome: ' || :reason,
            metadata = r.metadata || jsonb_build_object('released_at', CAST(:now AS text),
                                                        'released_because', :reason)
        FROM public.customer_enrollments e
        WHERE r.id = ANY(:ids) AND r.status = 'unknown'
          AND (CAST(:business_id AS uuid) IS NULL OR r.business_id = :business_id)
          AND e.id = r.enrollment_id AND e.status IN ('active', 'completed')
        RETURNING r.id, r.enrollment_id, r.step_order
    ), rewound AS (
        UPDATE public.customer_enrollments e
        SET current_step = least(e.current_step, x.step_order), status = 'active',
            status_reason = NULL,
            next_step_at = least(coalesce(e.next_step_at, :now), :now),
            metadata = jsonb_set(e.metadata, '{notes}', coalesce(e.metadata -> 'notes',
                '[]'::jsonb) || jsonb_build_array('step ' || (x.step_order + 1)
                || ': released after an unknown outcome; sending again'))
        FROM (SELECT enrollment_id, min(step_order) AS step_order FROM released
              GROUP BY enrollment_id) x
        WHERE e.id = x.enrollment_id
        RETURNING e.id
    )
    SELECT id FROM released
""")


def list_unknown(db: Database, business_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return [dict(r) for r in conn.execute(_LIST, {"business_id": business_id}).mappings()]


def release_unknown(db: Database, ids: Sequence[uuid.UUID], reason: str, now: datetime,
                    business_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Schedule these unknown messages again; returns the ids actually released (others
    were not unknown, or their enrollment stopped or was archived meanwhile)."""
    with db.begin() as conn:
        return [r.id for r in conn.execute(_RELEASE, {"ids": list(ids), "reason": reason,
                                                      "now": now, "business_id": business_id})]
