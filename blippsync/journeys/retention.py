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
from blippsync.journeys import queries as q
from blippsync.retention_sweeps import check_retention_settings, mark_swept, swept_until

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
# One window of creation time at a time, found through trigger_events_created_brin
# (migration 0190); occurred_at is what the rule is about (see delete_old_events), and an
# event is stored after it happened, so the created_at window only narrows the search.
# Decisions keep their row: enrollment_decisions.trigger_event_id is ON DELETE SET NULL.
_DELETE_EVENTS = sa.text("""
    WITH window_rows AS (
        SELECT id, routing_state IN ('routed', 'historical') AND occurred_at < :before AS doomed
        FROM public.trigger_events
        WHERE created_at >= :since AND created_at < :until
    ), gone AS (
        DELETE FROM public.trigger_events
        WHERE id = ANY(ARRAY(SELECT id FROM window_rows WHERE doomed))
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT count(*) FROM window_rows) AS seen
""")
_NEXT_EVENT = sa.text("""
    SELECT min(created_at) FROM public.trigger_events WHERE created_at >= :since
      AND created_at < :before
""")
EVENT_SWEEP = "trigger_events"
EVENT_WINDOW = timedelta(hours=1)
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
                      window: timedelta = EVENT_WINDOW) -> int:
    """Delete routed and historical events dated (occurred_at) more than
    `journeys.event_retention_days` ago; return how many. Pending events stay however old
    (not routed yet), and so do 'failed' ones (the daemon never sets that state: whoever
    did wants to look at them).

    Why the date and why longer than the backfill horizon: the stored dedupe key is what
    keeps a redelivered event from being emitted twice. Once the event is gone a redelivery
    is stored again, and then only its age protects the customer: older than
    `sync.backfill_horizon_days` it is stored as historical and enrolls no one. An event
    deleted at an age past the horizon therefore comes back (if ever) as historical, routed
    to nobody, and is deleted again by a later sweep. `explain --event` on a deleted event
    answers that it is unknown; the customer's decisions stay, without their event id.

    The sweep walks creation time (stored before the cutoff too) one `window` per
    transaction, from where the last sweep stopped (`blippsync.retention_sweeps`), so a
    day's sweep reads about a day of events whatever the table holds. A window is looked at
    once: an event still pending then, or stored long before it happened, is kept.
    """
    check_retention_settings(config)
    days = int(config["journeys.event_retention_days"])
    if days <= 0:
        return 0
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    with db.begin() as conn:
        since = swept_until(conn, EVENT_SWEEP)
    floor, deleted = since or datetime.min.replace(tzinfo=UTC), 0
    while True:
        if since is None:  # the first sweep, or an empty window: on to the next stored event
            with db.begin() as conn:
                since = conn.execute(_NEXT_EVENT, {"since": floor, "before": before}).scalar()
            if since is None:
                return deleted
        if since >= before:
            return deleted
        until = min(since + window, before)
        with db.begin() as conn:
            row = conn.execute(_DELETE_EVENTS, {"since": since, "until": until,
                                                "before": before}).one()
            mark_swept(conn, EVENT_SWEEP, until)
        deleted += row.deleted
        floor, since = until, (until if row.seen else None)
