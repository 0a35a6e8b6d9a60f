"""Customer operations beyond the batch upsert: resolving ids and merging two customers."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from blippsync.journeys.retention import merge_customer_history
from blippsync.sqlfiles import load

_SQL = load("customers")
_IDENTITY_STEPS = ("alias_merged_key", "move_aliases", "retire_merged")


def customer_for(conn: sa.Connection, business_id: uuid.UUID, source: str,
                 external_id: str) -> uuid.UUID | None:
    return conn.execute(_SQL["customer_by_identity"], {
        "business_id": business_id, "source": source, "external_id": external_id}).scalar()


def merge_customers(conn: sa.Connection, business_id: uuid.UUID, survivor_id: uuid.UUID,
                    merged_id: uuid.UUID) -> None:
    """Move everything of `merged_id` (ids, opt-out, contact details it lacks, enrollments
    and message history) to `survivor_id`; its active journeys stop.

    The merged-away row stays, marked merged_into_id and deleted, so old links still resolve.
    """
    if survivor_id == merged_id:
        return
    params = {"business_id": business_id, "survivor_id": survivor_id, "merged_id": merged_id}
    for step in _IDENTITY_STEPS:
        conn.execute(_SQL[step], params)
    merge_customer_history(conn, merged_id, survivor_id)  # journeys stop, history moves
