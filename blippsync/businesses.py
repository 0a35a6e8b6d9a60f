"""Businesses: the tenants. Creating and listing them (the web app does the same)."""

from __future__ import annotations

import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from blippsync.database import Database
from blippsync.errors import InputError, NotFoundError
from blippsync.google_review import problem_with

_INSERT = sa.text("""
    INSERT INTO public.businesses (name, created_by, timezone, google_review_url, phone,
                                   website_url, country)
    VALUES (:name, :owner_email, :timezone, :google_review_url, :phone, :website_url, :country)
    RETURNING id
""")
_LIST = sa.text("""
    SELECT b.id, b.name, b.created_by, b.timezone, b.country, b.subscription_status,
           b.google_review_url, b.created_at,
           (SELECT count(*) FROM public.customers c WHERE c.business_id = b.id) AS customers
    FROM public.businesses b ORDER BY b.created_at, b.name
""")
_GET = sa.text("SELECT id, name, timezone, country, subscription_status, google_review_url "
               "FROM public.businesses WHERE id = :id")


@dataclass(frozen=True)
class Business:
    id: uuid.UUID
    name: str
    timezone: str
    country: str
    subscription_status: str
    google_review_url: str | None


def add_business(db: Database, *, name: str, owner_email: str, timezone: str,
                 google_review_url: str | None = None, phone: str | None = None,
                 website_url: str | None = None, country: str = "US") -> uuid.UUID:
    if not name.strip():
        raise InputError("--name: a business needs a name")
    if "@" not in owner_email:
        raise InputError(f"--owner-email: {owner_email!r} is not an email address")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InputError(f"--timezone: {timezone!r} is not an IANA time zone "
                         "(for example America/Chicago)") from None
    problem = problem_with(google_review_url, None)
    if problem:
        raise InputError(f"--google-review-url: {problem}")
    with db.begin() as conn:
        business_id: uuid.UUID = conn.execute(_INSERT, {
            "name": name.strip(), "owner_email": owner_email.strip().lower(), "timezone": timezone,
            "google_review_url": google_review_url, "phone": phone, "website_url": website_url,
            "country": country.upper()}).scalar_one()
    return business_id


def list_businesses(db: Database) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(_LIST)]


def get_business(conn: sa.Connection, business_id: str | uuid.UUID) -> Business:
    try:
        key = uuid.UUID(str(business_id))
    except ValueError:
        raise InputError(f"--business: {business_id!r} is not a business id (a UUID)") from None
    row = conn.execute(_GET, {"id": key}).one_or_none()
    if row is None:
        raise NotFoundError(f"no business with id {key}")
    return Business(**row._mapping)
