"""Technicians: the team members QR codes and feedback are credited to."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from blippsync.database import Database
from blippsync.errors import InputError, NotFoundError

_INSERT = sa.text("""
    INSERT INTO public.techs (business_id, name, email) VALUES (:business_id, :name, :email)
    RETURNING id
""")
_LIST = sa.text("""
    SELECT t.id, t.name, t.email, t.active, t.created_at,
           (SELECT count(*) FROM public.qr_codes q WHERE q.tech_id = t.id) AS qr_codes,
           (SELECT coalesce(sum(q.scan_count), 0) FROM public.qr_codes q
            WHERE q.tech_id = t.id) AS scans,
           (SELECT count(*) FROM public.private_feedback f WHERE f.tech_id = t.id) AS feedback,
           (SELECT round(avg(f.rating), 2) FROM public.private_feedback f
            WHERE f.tech_id = t.id) AS average_rating
    FROM public.techs t
    WHERE t.business_id = :business_id AND (t.active OR :include_inactive)
    ORDER BY t.name, t.created_at
""")
_DEACTIVATE = sa.text("""
    UPDATE public.techs SET active = false WHERE id = :id AND business_id = :business_id
    RETURNING id
""")
_FIND = sa.text("SELECT id, active FROM public.techs WHERE id = :id AND business_id = :business_id")


def parse_id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InputError(f"--{what}: {value!r} is not an id (a UUID)") from None


def add_tech(db: Database, business_id: uuid.UUID, name: str, email: str | None = None
             ) -> uuid.UUID:
    if not name.strip():
        raise InputError("--name: a technician needs a name")
    if email and "@" not in email:
        raise InputError(f"--email: {email!r} is not an email address")
    with db.begin() as conn:
        _require_business(conn, business_id)
        tech_id: uuid.UUID = conn.execute(_INSERT, {
            "business_id": business_id, "name": name.strip(),
            "email": email.strip().lower() if email else None}).scalar_one()
    return tech_id


def list_techs(db: Database, business_id: uuid.UUID, *, include_inactive: bool = False
               ) -> list[dict[str, Any]]:
    with db.connect() as conn:
        _require_business(conn, business_id)
        return [dict(r) for r in conn.execute(
            _LIST, {"business_id": business_id, "include_inactive": include_inactive}).mappings()]


def deactivate_tech(db: Database, business_id: uuid.UUID, tech_id: uuid.UUID) -> None:
    """Mark a technician inactive: their codes keep working and their history stays."""
    with db.begin() as conn:
        if conn.execute(_DEACTIVATE, {"id": tech_id, "business_id": business_id}).first() is None:
            raise NotFoundError(f"business {business_id} has no technician {tech_id}")


def require_active_tech(conn: sa.Connection, business_id: uuid.UUID, tech_id: uuid.UUID) -> None:
    row = conn.execute(_FIND, {"id": tech_id, "business_id": business_id}).first()
    if row is None:
        raise NotFoundError(f"business {business_id} has no technician {tech_id}")
    if not row.active:
        raise InputError(f"--tech: technician {tech_id} is deactivated")


def _require_business(conn: sa.Connection, business_id: uuid.UUID) -> None:
    from blippsync.businesses import get_business

    get_business(conn, business_id)
