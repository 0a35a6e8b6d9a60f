"""Housekeeping: archive finished enrollments, stop journeys of archived sequences, and move
a merged-away customer's journey history to the survivor (`customers.merge_customer_history`,
which the sync engine also calls when it merges).

Also deletes trigger events whose routing is finished once their date is older than
`journeys.event_retention_days` (see `delete_old_events`).

Review requests and private feedback are never deleted (kept for analytics).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from blippsync.config import Config
from blippsync.customers import merge_customer_history
from blippsync.database import Database
from blippsync.errors import ConfigError
from blippsync.journeys import queries as q
from blippsync.settings import retention_problems

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
# Through trigger_events_finished_occurred_idx (migration 0190), then the primary key (an
# array, not IN (subquery): the planner turned that into a hash join over a sequential scan
# of the whole table for each chunk). Decisions keep their row:
# enrollment_decisions.trigger_event_id is ON DELETE SET NULL.
_DELETE_EVENTS = sa.text("""
    DELETE FROM public.trigger_events
    WHERE id = ANY(ARRAY(SELECT id FROM public.trigger_events
                         WHERE routing_state IN ('routed', 'historical')
                           AND occurred_at < :before
                         ORDER BY occurred_at
                         LIMIT :limit FOR UPDATE SKIP LOCKED))
""")
_MERGED = sa.text("""
    SELECT id, merged_into_id FROM public.customers
    WHERE merged_into_id IS NOT NULL AND id IN (
        SELECT customer_id FROM public.customer_enrollments
        UNION SELECT customer_id FROM public.review_requests WHERE customer_id IS NOT NULL)
""")


@dataclass(frozen=True)
class MaintenanceSummary:
    archived: int = 0
    stopped_archived_sequences: int = 0
    merged_customers: int = 0
    events_deleted: int = 0


def run_maintenance(db: Database, config: Config, *, now: datetime | None = None
                    ) -> MaintenanceSummary:
    at = now or datetime.now(UTC)
    with db.begin() as conn:
        stopped = conn.execute(q.STOP_ARCHIVED_SEQUENCES).rowcount
        merged = [row for row in conn.execute(_MERGED).all()
                  if merge_customer_history(conn, row.id, row.merged_into_id)]
    events = delete_old_events(db, config, now=at)
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
                              merged_customers=len(merged), events_deleted=events)


def delete_old_events(db: Database, config: Config, *, now: datetime | None = None,
                      chunk_rows: int = ARCHIVE_CHUNK_ROWS) -> int:
    """Delete routed and historical events dated (occurred_at) more than
    `journeys.event_retention_days` ago, in chunks; return how many. Pending events stay
    however old (not routed yet), and so do 'failed' ones (the daemon never sets that state:
    whoever did wants to look at them).

    Why the date and why longer than the backfill horizon: the stored dedupe key is what
    keeps a redelivered event from being emitted twice. Once the event is gone a redelivery
    is stored again, and then only its age protects the customer: older than
    `sync.backfill_horizon_days` it is stored as historical and enrolls no one. An event
    deleted at an age past the horizon therefore comes back (if ever) as historical, routed
    to nobody, and is deleted again by the next sweep. `explain --event` on a deleted event
    answers that it is unknown; the customer's decisions stay, without their event id.
    """
    if problems := retention_problems(config.values):
        raise ConfigError("; ".join(problems))
    days = int(config["journeys.event_retention_days"])
    if days <= 0:
        return 0
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    deleted = 0
    while True:
        with db.begin() as conn:
            gone = conn.execute(_DELETE_EVENTS, {"before": before, "limit": chunk_rows}).rowcount
        deleted += gone
        if gone < chunk_rows:
            return deleted
