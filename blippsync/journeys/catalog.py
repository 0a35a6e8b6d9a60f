"""Reading sequences back: list and show (what the web app or a file made)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from blippsync.database import Database
from blippsync.errors import InputError, NotFoundError
from blippsync.ids import option_id

_LIST = sa.text("""
    SELECT s.id, s.business_id, b.name AS business, s.name, s.trigger_source,
           s.trigger_event_type, s.status, s.settings,
           (SELECT count(*) FROM public.sequence_steps st WHERE st.sequence_id = s.id) AS steps,
           (SELECT count(*) FROM public.customer_enrollments e
            WHERE e.sequence_id = s.id AND e.status = 'active') AS active_enrollments
    FROM public.sequences s JOIN public.businesses b ON b.id = s.business_id
    WHERE CAST(:business AS uuid) IS NULL OR s.business_id = :business
    ORDER BY b.name, s.name
""")
_STEPS = sa.text("""
    SELECT step_order, step_type, delay_minutes, message_purpose, channel, message_config
    FROM public.sequence_steps WHERE sequence_id = :id ORDER BY step_order
""")


def list_sequences(db: Database, business_id: str | None = None) -> list[dict[str, Any]]:
    with db.connect() as conn:
        business = option_id(business_id, "--business")
        return [dict(r) for r in conn.execute(_LIST, {"business": business}).mappings()]


def show_sequence(db: Database, name_or_id: str, business_id: str | None = None) -> dict[str, Any]:
    matches = [s for s in list_sequences(db, business_id)
               if str(s["id"]) == name_or_id or s["name"].lower() == name_or_id.lower()]
    if not matches:
        raise NotFoundError(f"no sequence named or with id {name_or_id!r}")
    if len(matches) > 1:
        raise InputError(f"{len(matches)} sequences are named {name_or_id!r}: add --business ID")
    sequence = matches[0]
    with db.connect() as conn:
        sequence["step_list"] = [dict(r) for r in conn.execute(_STEPS, {"id": sequence["id"]})
                                 .mappings()]
    return sequence


def never_starting(db: Database, known_events: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    """Active sequences whose trigger no installed connector emits (written by the web app or
    before validation existed): they can never enroll anyone."""
    return [s for s in list_sequences(db) if s["status"] == "active"
            and s["trigger_event_type"] not in known_events.get(s["trigger_source"], ())]
