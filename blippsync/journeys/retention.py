"""Housekeeping: archive finished enrollments, stop journeys of archived sequences, and move
a merged-away customer's journey history to the survivor.

Review requests and private feedback are never deleted (kept for analytics).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from blippsync.config import Config
from blippsync.database import Database
from blippsync.journeys import queries as q
from blippsync.tenancy import refuse_cross_tenant

ARCHIVE_CHUNK_ROWS = 5000

_ARCHIVE = sa.text("""
    WITH moved AS (
        DELETE FROM public.customer_enrollments e
        WHERE e.id IN (SELECT id FROM public.customer_enrollments
                       WHERE status <> 'active' AND updated_at < :before
                       LIMIT :limit FOR UPDATE SKIP LOCKED)
        RETURNING e.*
    )
    INSERT INTO public.customer_enrollments_archive
        (id, business_id, sequence_id, customer_id, current_step, status, status_reason,
         enrolled_at, next_step_at, metadata, created_at, updated_at, archived_at)
    SELECT m.id, s.business_id, m.sequence_id, m.customer_id, m.current_step, m.status,
           m.status_reason, m.enrolled_at, m.next_step_at, m.metadata, m.created_at,
           m.updated_at, :now
    FROM moved m JOIN public.sequences s ON s.id = m.sequence_id
    ON CONFLICT (id) DO NOTHING
""")
_MERGED = sa.text("""
    SELECT id, merged_into_id FROM public.customers
    WHERE merged_into_id IS NOT NULL AND id IN (
        SELECT customer_id FROM public.customer_enrollments
        UNION SELECT customer_id FROM public.review_requests WHERE customer_id IS NOT NULL)
""")
_MERGE_STATEMENTS = tuple(sa.text(sql) for sql in (
    """UPDATE public.customer_enrollments SET status = 'stopped', status_reason = 'customer_merged',
              next_step_at = NULL WHERE customer_id = :old AND status = 'active'""",
    "UPDATE public.customer_enrollments SET customer_id = :new WHERE customer_id = :old",
    "UPDATE public.customer_enrollments_archive SET customer_id = :new WHERE customer_id = :old",
    "UPDATE public.review_requests SET customer_id = :new WHERE customer_id = :old",
    "UPDATE public.enrollment_decisions SET customer_id = :new WHERE customer_id = :old",
    "UPDATE public.trigger_events SET customer_id = :new WHERE customer_id = :old",
    "UPDATE public.private_feedback SET customer_id = :new WHERE customer_id = :old",
    "UPDATE public.inbound_sms SET customer_id = :new WHERE customer_id = :old",
))


@dataclass(frozen=True)
class MaintenanceSummary:
    archived: int = 0
    stopped_archived_sequences: int = 0
    merged_customers: int = 0


_BUSINESSES_OF = sa.text("SELECT id, business_id FROM public.customers WHERE id = ANY(:ids)")


def merge_customer_history(conn: sa.Connection, merged_id: uuid.UUID,
                           survivor_id: uuid.UUID) -> bool:
    """Stop the merged customer's journeys and move all its history to the survivor
    (inside the caller's transaction; the sync engine may call it when it merges).
    A survivor of another business is refused and recorded: returns False."""
    found = conn.execute(_BUSINESSES_OF, {"ids": [merged_id, survivor_id]}).all()
    owners: dict[uuid.UUID, uuid.UUID] = {row.id: row.business_id for row in found}
    if owners.get(merged_id) != owners.get(survivor_id):
        refuse_cross_tenant(conn, table="customers", column="merged_into_id", row_id=merged_id,
                            business_id=owners.get(merged_id), referenced_id=survivor_id,
                            referenced_business=owners.get(survivor_id), found_by="merge")
        return False
    for statement in _MERGE_STATEMENTS:
        conn.execute(statement, {"old": merged_id, "new": survivor_id})
    return True


def run_maintenance(db: Database, config: Config, *, now: datetime | None = None
                    ) -> MaintenanceSummary:
    at = now or datetime.now(UTC)
    with db.begin() as conn:
        stopped = conn.execute(q.STOP_ARCHIVED_SEQUENCES).rowcount
        merged = [row for row in conn.execute(_MERGED).all()
                  if merge_customer_history(conn, row.id, row.merged_into_id)]
    before = at - timedelta(days=config["journeys.retention_days"])
    archived = 0
    while True:
        with db.begin() as conn:
            moved = conn.execute(_ARCHIVE, {"before": before, "limit": ARCHIVE_CHUNK_ROWS,
                                            "now": at}).rowcount
        archived += moved
        if moved < ARCHIVE_CHUNK_ROWS:
            break
    return MaintenanceSummary(archived=archived, stopped_archived_sequences=stopped,
                              merged_customers=len(merged))
