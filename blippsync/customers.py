"""Customer operations beyond the batch upsert: resolving ids and merging two customers."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from blippsync.sqlfiles import load

_SQL = load("customers")
_MERGE_STEPS = ("alias_merged_key", "move_aliases", "stop_clashing_enrollments", "move_enrollments",
                "move_review_requests", "move_trigger_events", "move_private_feedback",
                "retire_merged")


def customer_for(conn: sa.Connection, business_id: uuid.UUID, source: str,
                 external_id: str) -> uuid.UUID | None:
    return conn.execute(_SQL["customer_by_identity"], {
        "business_id": business_id, "source": source, "external_id": external_id}).scalar()


def merge_customers(conn: sa.Connection, business_id: uuid.UUID, survivor_id: uuid.UUID,
                    merged_id: uuid.UUID) -> None:
    """Move everything of `merged_id` (ids, enrollments, history, opt-out) to `survivor_id`.

    The merged-away row stays, marked merged_into_id and deleted, so old links still resolve.
    """
    if survivor_id == merged_id:
        return
    params = {"business_id": business_id, "survivor_id": survivor_id, "merged_id": merged_id}
    for step in _MERGE_STEPS:
        conn.execute(_SQL[step], params)
