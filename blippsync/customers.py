"""Customer operations beyond the batch upsert: resolving ids and merging two customers."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from blippsync.sqlfiles import load
from blippsync.tenancy import refuse_cross_tenant

_SQL = load("customers")
_IDENTITY_STEPS = ("alias_merged_key", "move_aliases", "retire_merged")
# Everything that names a customer besides its identities: its journeys stop, its history
# (enrollments, requests, decisions, events, feedback, inbound SMS) follows the survivor.
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


_BUSINESSES_OF = sa.text("SELECT id, business_id FROM public.customers WHERE id = ANY(:ids)")


def merge_customer_history(conn: sa.Connection, merged_id: uuid.UUID,
                           survivor_id: uuid.UUID) -> bool:
    """Stop the merged customer's journeys and move all its history to the survivor
    (inside the caller's transaction: the sync engine's merges, journey maintenance).
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
