"""The webhook inbox: verified notices stored on receipt, turned into fetches later.

Each notice is one row keyed by (connector, dedupe_key), so a redelivered delivery (the
senders retry at least once) is recognised and counted instead of fetched again. The
key is the sender's own id where it has one (QuickBooks CloudEvents `id`), else what
names the change (Jobber: topic + itemId + occurredAt), else a hash of the body.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from blippsync.connector import WebhookNotice
from blippsync.database import Database
from blippsync.normalize import storable as clean

STORE_SQL = sa.text("""
INSERT INTO public.webhook_deliveries AS d
    (connector, dedupe_key, account_id, connection_id, business_id, entity, entity_id,
     operation, occurred_at, notice, state)
SELECT :connector, :dedupe_key, :account_id, c.id, c.business_id, :entity, :entity_id,
       :operation, :occurred_at, CAST(:notice AS jsonb),
       CASE WHEN c.id IS NULL THEN 'unmatched' ELSE 'pending' END
FROM (SELECT 1) AS one
LEFT JOIN public.connections AS c ON c.connector = :connector AND c.account_id = :account_id
ORDER BY c.created_at
LIMIT 1
ON CONFLICT (connector, dedupe_key) DO UPDATE SET redeliveries = d.redeliveries + 1
RETURNING (xmax = 0) AS inserted, state
""")

PENDING_SQL = sa.text("""
SELECT id, entity, entity_id, operation, occurred_at, account_id, notice, attempts
FROM public.webhook_deliveries
WHERE connection_id = :connection_id AND state = 'pending' AND next_attempt_at <= now()
ORDER BY received_at, id
LIMIT :limit
""")

DONE_SQL = sa.text("""
UPDATE public.webhook_deliveries SET state = 'processed', processed_at = now(), last_error = NULL
WHERE id = ANY(:ids)
""")

FAILED_SQL = sa.text("""
UPDATE public.webhook_deliveries
SET attempts = attempts + 1, last_error = :error,
    state = CASE WHEN attempts + 1 >= :max_attempts THEN 'failed' ELSE 'pending' END,
    next_attempt_at = now() + make_interval(secs => least(3600, 5 * power(2, attempts)))
WHERE id = ANY(:ids)
""")


RETENTION_SQL = sa.text("""
DELETE FROM public.webhook_deliveries
WHERE state <> 'pending' AND received_at < now() - make_interval(days => :days)
""")


@dataclass(frozen=True)
class StoredNotice:
    """A pending notice read back for processing."""

    id: uuid.UUID
    notice: WebhookNotice
    attempts: int


def dedupe_key(notice: WebhookNotice, body: bytes, index: int) -> str:
    """The sender's id, else entity+id+operation+time, else the body's hash and position."""
    if notice.delivery_id:
        return f"id:{notice.delivery_id}"
    if notice.occurred_at is not None and notice.entity_id:
        return (f"at:{notice.entity}:{notice.entity_id}:{notice.operation}:"
                f"{notice.occurred_at.isoformat()}")
    return f"sha256:{hashlib.sha256(body).hexdigest()}:{index}"


def clean_notice(notice: WebhookNotice) -> WebhookNotice:
    return replace(notice, account_id=clean(notice.account_id), entity=clean(notice.entity),
                   entity_id=clean(notice.entity_id), operation=clean(notice.operation),
                   delivery_id=clean(notice.delivery_id), extra=clean(notice.extra or {}))


def store(db: Database, connector: str, notices: Sequence[WebhookNotice], body: bytes
          ) -> tuple[int, int]:
    """Insert the notices (one transaction, cleaned first); return (new, redelivered)."""
    new = seen = 0
    with db.begin() as conn:
        for index, notice in enumerate(map(clean_notice, notices)):
            row = conn.execute(STORE_SQL, {
                "connector": connector, "dedupe_key": dedupe_key(notice, body, index),
                "account_id": notice.account_id or "", "entity": notice.entity or "",
                "entity_id": notice.entity_id or "", "operation": notice.operation or "",
                "occurred_at": notice.occurred_at, "notice": json.dumps(_notice_json(notice)),
            }).one()
            if row.inserted:
                new += 1
            else:
                seen += 1
    return new, seen


def pending(db: Database, connection_id: uuid.UUID, limit: int) -> list[StoredNotice]:
    with db.connect() as conn:
        rows = conn.execute(PENDING_SQL, {"connection_id": connection_id, "limit": limit}).all()
    return [StoredNotice(id=r.id, attempts=r.attempts, notice=WebhookNotice(
        account_id=r.account_id, entity=r.entity, entity_id=r.entity_id, operation=r.operation,
        occurred_at=r.occurred_at, delivery_id=r.notice.get("delivery_id"),
        extra=r.notice.get("extra") or {})) for r in rows]


def mark_processed(db: Database, ids: Sequence[uuid.UUID]) -> None:
    with db.begin() as conn:
        conn.execute(DONE_SQL, {"ids": list(ids)})


def mark_failed(db: Database, ids: Sequence[uuid.UUID], error: str, max_attempts: int) -> None:
    with db.begin() as conn:
        conn.execute(FAILED_SQL, {"ids": list(ids), "error": error[:2000],
                                  "max_attempts": max_attempts})


def delete_old(db: Database, days: int) -> int:
    with db.begin() as conn:
        return conn.execute(RETENTION_SQL, {"days": days}).rowcount


def _notice_json(notice: WebhookNotice) -> dict[str, Any]:
    return {"delivery_id": notice.delivery_id, "extra": _jsonable(notice.extra)}


def _jsonable(value: Any) -> Any:
    return clean(json.loads(json.dumps(clean(value), default=str)))
