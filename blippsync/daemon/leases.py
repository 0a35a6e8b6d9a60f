"""Leases on connections: how several daemons share the work through PostgreSQL alone.

A daemon claims due connections with `FOR UPDATE SKIP LOCKED` (so two claimers never wait
on each other or take the same row) and stamps them with its id and an expiry. It renews
the expiry while it works and clears it when done. A crashed daemon simply stops
renewing: once `lease_expires_at` passes, any other daemon may claim the connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from blippsync.database import Database

# Due: its next sync time has come, or webhook notices are waiting for it. Each kind is
# found from its own index (connections_scheduled_due_idx in next_sync_at order; pending
# notices from webhook_deliveries_pending_idx), so a claim reads the rows it may take and
# not every connection: at 10,000 connections the single OR over both walked them all,
# with a notice probe each, on every tick of every daemon. The literal connector list
# matches the partial index (migration 0150); :unscheduled stays the authority.
CLAIM_SQL = sa.text("""
WITH by_time AS (
    SELECT c.id, c.next_sync_at FROM public.connections AS c
    WHERE c.status = 'connected' AND c.connector NOT IN ('csv', 'manual')
      AND NOT (c.connector = ANY(:unscheduled))
      AND c.next_sync_at <= now()
      AND (c.lease_expires_at IS NULL OR c.lease_expires_at < now())
    ORDER BY c.next_sync_at
    LIMIT :limit
    FOR UPDATE OF c SKIP LOCKED
), by_notice AS (
    SELECT c.id, c.next_sync_at FROM public.connections AS c
    WHERE c.id IN (SELECT d.connection_id FROM public.webhook_deliveries AS d
                   WHERE d.state = 'pending' AND d.next_attempt_at <= now())
      AND c.next_sync_at > now()   -- the others are in by_time already
      AND c.status = 'connected' AND NOT (c.connector = ANY(:unscheduled))
      AND (c.lease_expires_at IS NULL OR c.lease_expires_at < now())
    ORDER BY c.next_sync_at
    LIMIT :limit
    FOR UPDATE OF c SKIP LOCKED
), due AS (
    SELECT id FROM (SELECT * FROM by_time UNION ALL SELECT * FROM by_notice) AS both_kinds
    ORDER BY next_sync_at
    LIMIT :limit
)
UPDATE public.connections AS c
SET lease_owner = :owner,
    lease_expires_at = now() + make_interval(secs => :lease_seconds)
FROM due WHERE c.id = due.id
RETURNING c.id, c.business_id, c.connector, c.account_id, c.next_sync_at <= now() AS sync_due,
          c.sync_interval_seconds, c.consecutive_failures, c.lease_expires_at
""")

RENEW_SQL = sa.text("""
UPDATE public.connections
SET lease_expires_at = now() + make_interval(secs => :lease_seconds)
WHERE id = ANY(:ids) AND lease_owner = :owner
RETURNING id
""")

RELEASE_SQL = sa.text("""
UPDATE public.connections
SET lease_owner = NULL, lease_expires_at = NULL,
    next_sync_at = coalesce(:next_sync_at, next_sync_at)
WHERE id = :id AND lease_owner = :owner
""")

RELEASE_ALL_SQL = sa.text("""
UPDATE public.connections SET lease_owner = NULL, lease_expires_at = NULL
WHERE lease_owner = :owner AND NOT (id = ANY(:keep))
RETURNING id
""")

STILL_HELD_SQL = sa.text("""
SELECT lease_owner = :owner AND lease_expires_at > now() FROM public.connections WHERE id = :id
""")


@dataclass(frozen=True)
class Lease:
    """A connection this daemon holds, and why it was due."""

    connection_id: uuid.UUID
    business_id: uuid.UUID
    connector: str
    account_id: str
    sync_due: bool
    sync_interval_seconds: int | None
    consecutive_failures: int
    expires_at: datetime


def claim(db: Database, owner: str, *, limit: int, lease_seconds: int,
          unscheduled: Sequence[str] = ()) -> list[Lease]:
    """Claim up to `limit` due connections nobody holds (a short transaction of its own);
    connectors in `unscheduled` (driven by files and commands) are never claimed."""
    if limit <= 0:
        return []
    with db.begin() as conn:
        rows = conn.execute(CLAIM_SQL, {"owner": owner, "limit": limit,
                                        "lease_seconds": lease_seconds,
                                        "unscheduled": list(unscheduled)}).all()
    return [Lease(connection_id=r.id, business_id=r.business_id, connector=r.connector,
                  account_id=r.account_id, sync_due=bool(r.sync_due),
                  sync_interval_seconds=r.sync_interval_seconds,
                  consecutive_failures=r.consecutive_failures, expires_at=r.lease_expires_at)
            for r in rows]


def renew(db: Database, owner: str, ids: Sequence[uuid.UUID], *, lease_seconds: int
          ) -> set[uuid.UUID]:
    """Extend the leases still ours; the ids missing from the answer were lost."""
    if not ids:
        return set()
    with db.begin() as conn:
        rows = conn.execute(RENEW_SQL, {"ids": list(ids), "owner": owner,
                                        "lease_seconds": lease_seconds}).all()
    return {r.id for r in rows}


def release(db: Database, owner: str, connection_id: uuid.UUID,
            next_sync_at: datetime | None = None) -> None:
    """Give a connection back, optionally with its next sync time."""
    with db.begin() as conn:
        conn.execute(RELEASE_SQL, {"id": connection_id, "owner": owner,
                                   "next_sync_at": next_sync_at})


def release_all(db: Database, owner: str, keep: Sequence[uuid.UUID] = ()) -> list[Any]:
    """Give back every lease of `owner` except `keep` (work that may still be writing)."""
    with db.begin() as conn:
        return [r.id for r in conn.execute(RELEASE_ALL_SQL, {"owner": owner, "keep": list(keep)})]


def still_held(db: Database, owner: str, connection_id: uuid.UUID) -> bool:
    """Is the lease ours and unexpired? (a fence before work that must not run twice)"""
    with db.connect() as conn:
        return bool(conn.execute(STILL_HELD_SQL, {"id": connection_id, "owner": owner}).scalar())
