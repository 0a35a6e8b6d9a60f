"""Finding customers and seeing their identities: what `blippsync customers list|show|search`
print, with the ids `blippsync explain --customer` takes."""

from __future__ import annotations

from typing import Any

from blippsync.database import Database
from blippsync.errors import InputError, NotFoundError
from blippsync.ids import option_id
from blippsync.sqlfiles import load

_SQL = load("directory")
DEFAULT_LIMIT = 100


def list_customers(db: Database, business_id: str | None,
                   limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
    """Live customers (not merged away or deleted), oldest first."""
    with db.connect() as conn:
        rows = conn.execute(_SQL["list_customers"], {
            "business_id": option_id(business_id, "--business"), "limit": limit}).mappings()
        return [dict(r) for r in rows]


def search_customers(db: Database, business_id: str | None, term: str,
                     limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
    """By name or email (any part, any case), phone (its digits, 4 or more), or source id."""
    term = term.strip()
    if not term:
        raise InputError("search: give a name, email, phone number or external id")
    digits = "".join(ch for ch in term if ch.isdigit())
    digits = digits if len(digits) >= 4 and not any(ch.isalpha() for ch in term) else ""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with db.connect() as conn:
        rows = conn.execute(_SQL["search_customers"], {
            "business_id": option_id(business_id, "--business"), "term": term,
            "pattern": f"%{escaped}%", "digits": digits,
            "digit_pattern": f"%{digits}%", "limit": limit}).mappings()
        return [dict(r) for r in rows]


def customer_detail(db: Database, customer_id: str) -> dict[str, Any]:
    """One customer with every contact, the source ids it answers to, and its identity
    decisions (joins and conflicts)."""
    key = option_id(customer_id, "customer")
    with db.connect() as conn:
        row = conn.execute(_SQL["customer_detail"], {"id": key}).mappings().first()
        if row is None:
            raise NotFoundError(f"no customer with id {key}")
        identities = conn.execute(_SQL["customer_identities"], {"id": key}).mappings()
        conflicts = conn.execute(_SQL["list_conflicts"], {
            "business_id": row["business_id"], "customer_id": key,
            "include_resolved": True}).mappings()
        return {**row, "identities": [dict(i) for i in identities],
                "identity_decisions": [dict(c) for c in conflicts]}
