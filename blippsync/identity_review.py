"""The operator's review of identity decisions the sync made on its own.

Two kinds are recorded in identity_conflicts: `merged` (a record joined the customer whose
email it shares: both reach one contactable customer) and `conflict` (a customer's new
email already belongs to another customer, so it was held back). Each can be resolved:

- keep apart: a joined record becomes a customer of its own (the shared email stays with
  the first); a conflict is closed with both customers left as they are;
- merge: a conflict's customer is merged into the one that has the email (ids, history and
  opt-outs move, see customers.merge_customers); a join is confirmed.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from blippsync.customers import merge_customers
from blippsync.database import Database
from blippsync.errors import InputError, NotFoundError
from blippsync.ids import option_id
from blippsync.sqlfiles import load

_SQL = load("directory")
ACTIONS = ("keep-apart", "merge")


def list_conflicts(db: Database, business_id: str | None = None,
                   include_resolved: bool = False) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(_SQL["list_conflicts"], {
            "business_id": option_id(business_id, "--business"), "customer_id": None,
            "include_resolved": include_resolved}).mappings()
        return [dict(r) for r in rows]


def resolve_conflict(db: Database, conflict_id: str, action: str) -> dict[str, Any]:
    """Apply `action` (keep-apart | merge) to one open decision; returns what was done."""
    if action not in ACTIONS:
        raise InputError(f"resolve: {action!r} is not one of {', '.join(ACTIONS)}")
    key = option_id(conflict_id, "conflict")
    with db.begin() as conn:
        row = conn.execute(_SQL["lock_conflict"], {"id": key}).mappings().first()
        if row is None:
            raise NotFoundError(f"no identity conflict with id {key}")
        if row["resolved_at"] is not None:
            raise InputError(f"identity conflict {key} is already resolved")
        if row["kind"] == "merged" and action == "keep-apart":
            customer_id = _split(conn, row)
            outcome = f"record {row['external_id']} is now customer {customer_id} of its own"
        elif row["kind"] == "conflict" and action == "merge":
            survivor = row["conflicting_customer_id"]
            if survivor is None or row["customer_id"] is None:
                raise InputError(f"identity conflict {key}: one of its customers is gone")
            merge_customers(conn, row["business_id"], survivor, row["customer_id"])
            customer_id = survivor
            outcome = f"customer {row['customer_id']} merged into {survivor}"
        else:
            customer_id = row["customer_id"]
            outcome = ("the join is confirmed" if row["kind"] == "merged"
                       else "both customers kept as they are")
        resolution = "kept_apart" if action == "keep-apart" else "merged"
        conn.execute(_SQL["mark_resolved"], {"id": key, "resolution": resolution,
                                             "customer_id": customer_id})
    return {"id": str(key), "kind": row["kind"], "resolution": resolution,
            "customer_id": str(customer_id) if customer_id else None, "outcome": outcome}


def _split(conn: sa.Connection, row: Any) -> Any:
    details = row["details"] or {}
    params = {"business_id": row["business_id"], "source": row["source"],
              "external_id": row["external_id"]}
    phones = [{"number": details[k], "kind": kind}
              for k, kind in (("phone", "primary"), ("mobile", "mobile")) if details.get(k)]
    customer_id = conn.execute(_SQL["split_shared_record"], {
        **params, "name": details.get("name"), "phone": details.get("phone"),
        "mobile": details.get("mobile"), "address": details.get("address"),
        "phones": json.dumps(phones)}).scalar_one()
    conn.execute(_SQL["move_record_events"], {**params, "customer_id": customer_id})
    return customer_id
