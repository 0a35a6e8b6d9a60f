"""Writing sequence files into `sequences` / `sequence_steps` (the web app's tables).

Applying is idempotent: a sequence is matched by (business, name), its steps are replaced
in place by step_order, and `flow_definition` is rewritten from the same steps, so the web
app's flow editor and the engine never disagree.
"""

from __future__ import annotations

import json
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from blippsync.database import Database
from blippsync.errors import InputError, NotFoundError
from blippsync.google_review import problem_with
from blippsync.journeys.definitions import SequenceFile, SequenceSpec

_FIND_BUSINESS_BY_NAME = sa.text(
    "SELECT id FROM public.businesses WHERE lower(name) = lower(:name) ORDER BY created_at")
_INSERT_BUSINESS = sa.text("""
    INSERT INTO public.businesses (name, created_by, timezone, google_review_url, phone,
                                   website_url, country, postal_address)
    VALUES (:name, :owner_email, :timezone, :google_review_url, :phone, :website_url, :country,
            :postal_address)
    RETURNING id
""")
_BUSINESS_EXISTS = sa.text("SELECT id FROM public.businesses WHERE id = :id")
_ENSURE_SOURCE = sa.text(
    "INSERT INTO public.customer_sources (name) VALUES (:name) ON CONFLICT (name) DO NOTHING")
_UPSERT_SEQUENCE = sa.text("""
    INSERT INTO public.sequences (business_id, name, trigger_source, trigger_event_type, status,
                                  settings, flow_definition)
    VALUES (:business_id, :name, :trigger_source, :trigger_event_type, :status,
            CAST(:settings AS jsonb), CAST(:flow AS jsonb))
    ON CONFLICT (business_id, name) DO UPDATE SET
        trigger_source = EXCLUDED.trigger_source, trigger_event_type = EXCLUDED.trigger_event_type,
        status = EXCLUDED.status, settings = EXCLUDED.settings,
        flow_definition = EXCLUDED.flow_definition
    RETURNING id, (xmax = 0) AS created
""")
_UPSERT_STEP = sa.text("""
    INSERT INTO public.sequence_steps (sequence_id, step_order, step_type, delay_minutes,
                                       message_purpose, message_config, channel)
    VALUES (:sequence_id, :step_order, :step_type, :delay_minutes, :purpose,
            CAST(:message_config AS jsonb), :channel)
    ON CONFLICT (sequence_id, step_order) DO UPDATE SET
        step_type = EXCLUDED.step_type, delay_minutes = EXCLUDED.delay_minutes,
        message_purpose = EXCLUDED.message_purpose, message_config = EXCLUDED.message_config,
        channel = EXCLUDED.channel
""")
_DROP_EXTRA_STEPS = sa.text(
    "DELETE FROM public.sequence_steps WHERE sequence_id = :sequence_id AND step_order >= :count")
_STOP_ARCHIVED = sa.text("""
    UPDATE public.customer_enrollments SET status = 'stopped', status_reason = 'sequence_archived',
           next_step_at = NULL
    WHERE sequence_id = :sequence_id AND status = 'active'
""")


@dataclass(frozen=True)
class AppliedSequence:
    id: uuid.UUID
    name: str
    created: bool
    steps: int
    status: str


@dataclass(frozen=True)
class ApplyResult:
    business_id: uuid.UUID
    business_created: bool
    sequences: tuple[AppliedSequence, ...]


def apply_sequence_file(db: Database, file: SequenceFile, *,
                        business_id: str | None = None) -> ApplyResult:
    """Create or update every sequence of the file for one business, in one transaction."""
    with db.begin() as conn:
        business, created = _resolve_business(conn, file, business_id)
        applied = tuple(_apply_one(conn, business, spec) for spec in file.sequences)
    return ApplyResult(business_id=business, business_created=created, sequences=applied)


def _apply_one(conn: sa.Connection, business_id: uuid.UUID, spec: SequenceSpec) -> AppliedSequence:
    conn.execute(_ENSURE_SOURCE, {"name": spec.trigger_source})
    row = conn.execute(_UPSERT_SEQUENCE, {
        "business_id": business_id, "name": spec.name, "trigger_source": spec.trigger_source,
        "trigger_event_type": spec.trigger_event_type, "status": spec.status,
        "settings": json.dumps(dict(spec.settings)),
        "flow": json.dumps(spec.flow_definition())}).one()
    conn.execute(_DROP_EXTRA_STEPS, {"sequence_id": row.id, "count": len(spec.steps)})
    conn.execute(_UPSERT_STEP, [{
        "sequence_id": row.id, "step_order": s.order, "step_type": s.type,
        "delay_minutes": s.delay_minutes, "purpose": s.purpose, "channel": s.channel,
        "message_config": json.dumps(dict(s.message_config))} for s in spec.steps])
    if spec.status == "archived":
        conn.execute(_STOP_ARCHIVED, {"sequence_id": row.id})
    return AppliedSequence(id=row.id, name=spec.name, created=bool(row.created),
                           steps=len(spec.steps), status=spec.status)


def _resolve_business(conn: sa.Connection, file: SequenceFile,
                      business_id: str | None) -> tuple[uuid.UUID, bool]:
    wanted: Any = business_id or file.business.get("id")
    if wanted:
        try:
            key = uuid.UUID(str(wanted))
        except ValueError:
            raise InputError(f"{file.path}: business id {wanted!r} is not a UUID") from None
        if conn.execute(_BUSINESS_EXISTS, {"id": key}).first() is None:
            raise NotFoundError(f"{file.path}: no business with id {key}")
        return key, False
    name = file.business.get("name")
    if not name:
        raise InputError(f"{file.path}: name the business: --business ID, or a [business] table "
                         "with id or name")
    rows = conn.execute(_FIND_BUSINESS_BY_NAME, {"name": name}).all()
    if len(rows) > 1:
        raise InputError(f"{file.path}: {len(rows)} businesses are named {name!r}; "
                         "use --business ID")
    if rows:
        return rows[0].id, False
    owner = file.business.get("owner_email")
    if not owner:
        raise NotFoundError(f"{file.path}: no business named {name!r} (add owner_email to the "
                            "[business] table to create it)")
    return _create_business(conn, file, owner), True


def _create_business(conn: sa.Connection, file: SequenceFile, owner: str) -> uuid.UUID:
    info = file.business
    tz = info.get("timezone") or "America/New_York"
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InputError(f"{file.path}: business timezone {tz!r} is not an IANA "
                         "time zone") from None
    url = info.get("google_review_url")
    problem = problem_with(str(url), None) if url else None
    if problem:
        raise InputError(f"{file.path}: business {problem}")
    business_id: uuid.UUID = conn.execute(_INSERT_BUSINESS, {
        "name": str(info["name"]).strip(), "owner_email": str(owner).strip().lower(),
        "timezone": tz, "google_review_url": url, "phone": info.get("phone"),
        "website_url": info.get("website_url"),
        "country": str(info.get("country", "US")).upper(),
        "postal_address": info.get("postal_address")}).scalar_one()
    return business_id
