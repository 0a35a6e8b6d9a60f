"""Refusing work whose rows span two businesses, and saying so.

The schema's same-business keys (migration 0100) stop new links between tenants; links
that predate them (listed by that migration) and anything that slips past are refused
here by the daemon, which records each in blippsync.cross_tenant_links (the same list the
migration fills) and logs it, instead of acting on it.
"""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa

log = logging.getLogger(__name__)
REASON = "cross_tenant"

_RECORD = sa.text("""
INSERT INTO blippsync.cross_tenant_links (table_name, column_name, row_id, business_id,
                                          referenced_id, referenced_business, found_by)
VALUES (:table, :column, :row_id, :business_id, :referenced_id, :referenced_business, :found_by)
ON CONFLICT ON CONSTRAINT cross_tenant_links_once DO NOTHING
""")


def refuse_cross_tenant(conn: sa.Connection, *, table: str, column: str, row_id: uuid.UUID,
                        business_id: uuid.UUID | None, referenced_id: uuid.UUID,
                        referenced_business: uuid.UUID | None, found_by: str) -> None:
    """Record (once) and log a link from `table.column` of one business to another's row."""
    conn.execute(_RECORD, {"table": table, "column": column, "row_id": row_id,
                           "business_id": business_id, "referenced_id": referenced_id,
                           "referenced_business": referenced_business, "found_by": found_by})
    log.warning("%s refused: %s.%s of row %s (business %s) points at %s of business %s",
                found_by, table, column, row_id, business_id, referenced_id, referenced_business)
